"""pysaml2's failures, as stable reason codes.

pysaml2 raises many unrelated exception types while it parses and validates a
response; :func:`classify` turns each into the reason code stored on the
``rejected`` event and the HTTP status of the answer.
"""

from __future__ import annotations

import binascii
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from saml2.response import (
    DecryptionFailed,
    IncorrectlySigned,
    StatusError,
    StatusNoAuthnContext,
    UnsolicitedResponse,
    VerificationError,
)
from saml2.s_utils import RequestVersionTooHigh, RequestVersionTooLow
from saml2.sigver import DecryptError, MissingKey, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

__all__ = ["classify"]

# (exception types, reason code, status) — first match wins.
_REJECTIONS: tuple[tuple[tuple[type[BaseException], ...], str, int], ...] = (
    ((DecryptionFailed, DecryptError), "decryption_failed", 400),
    ((IncorrectlySigned, MissingKey, SigverError), "bad_signature", 400),
    ((ResponseLifetimeExceed,), "expired", 400),
    ((ToEarly,), "not_yet_valid", 400),
    ((UnsolicitedResponse,), "unsolicited", 400),
    # The IdP could not authenticate the person as the AuthnRequest asked (RequestedAuthnContext).
    ((StatusNoAuthnContext,), "authn_context_insufficient", 403),
    ((StatusError,), "idp_status", 403),
    ((RequestVersionTooLow, RequestVersionTooHigh), "unsupported_version", 400),
    ((VerificationError,), "conditions_not_met", 400),
    ((binascii.Error, ParseError, DefusedXmlException, UnicodeDecodeError), "malformed_response", 400),
)


def classify(exc: BaseException) -> tuple[str, int]:
    """A stable reason code and an HTTP status for a pysaml2 failure."""
    for types, code, status in _REJECTIONS:
        if isinstance(exc, types):
            return code, status
    if "AudienceRestriction" in str(exc):
        return "wrong_audience", 400
    return "invalid_response", 400
