"""Checks on a SAML response beyond what pysaml2 enforces.

pysaml2 verifies signatures and most conditions, but — with the settings
djangosaml2 documents — it also accepts things a careful service provider
must refuse: a document with a DTD, an assertion without an
AudienceRestriction, a bearer confirmation without Recipient or NotOnOrAfter,
any InResponseTo once unsolicited responses are allowed, SHA-1 signatures.
These checks run before (:func:`inspect_document`, :func:`check_encryption`)
and after (:func:`verify_response`) pysaml2's own, and raise
:class:`~saml_jit.exceptions.Rejected`. Before: the document is parsed within
the work bounds (:mod:`.bounds`) and its encryption algorithms are held to
the allow-list (:mod:`.encryption`), so pysaml2 never spends its costly
object model on a hostile document nor decrypts what it should not.
"""

from __future__ import annotations

import base64
import binascii
import time
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from saml2.saml import SCM_BEARER
from saml2.time_util import str_to_time

from ..conf import IdPSettings, app_settings
from ..exceptions import Rejected
from . import bounds
from . import encryption as xmlenc
from .limits import ENTITY_ID_MAX_LENGTH

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML_ISSUER = f"{{{SAML}}}Issuer"
DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"

SHA1_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    }
)


@dataclass(frozen=True)
class Inspection:
    """What an (unverified) response document claims, for routing decisions only."""

    issuer: str
    in_response_to: str | None
    destination: str | None = None
    #: The Response carries a signature of its own (pysaml2 must verify it before decrypting).
    signed: bool = False
    #: The encryption methods the document asks for (see :mod:`saml_jit.saml.encryption`).
    encryption: tuple[xmlenc.Method, ...] = ()


def _issuer_element(root: Any) -> Any:
    issuer = root.find(SAML_ISSUER)
    return issuer if issuer is not None else root.find(f".//{SAML_ISSUER}")


def _decode(saml_response: str) -> bytes:
    try:
        return base64.b64decode(saml_response, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("malformed_response", "The SAMLResponse is not valid base64.") from None


def _parse(document: bytes) -> Any:
    try:
        return bounds.parse(document)
    except bounds.DoctypeFound:
        # Any DTD, even a harmless one: SAML never needs one, and DTDs carry
        # entity expansion and external-entity attacks.
        raise Rejected("dtd_forbidden", "The SAML response contains a document type declaration.") from None
    except bounds.TooComplex as exc:
        raise Rejected(
            "response_too_complex", f"The SAML response has {exc} (saml_jit.saml.bounds).", status=413
        ) from None
    except bounds.NotWellFormed:
        raise Rejected("malformed_response", "The SAML response is not well-formed XML.") from None


def _encryption_methods(root: Any) -> tuple[xmlenc.Method, ...]:
    try:
        return xmlenc.methods(root)
    except xmlenc.Unacceptable as exc:
        raise Rejected("encryption_algorithm", f"The response's encryption is refused: {exc}.") from None


def _check_one_encrypted_assertion(root: Any) -> None:
    # A second assertion beside an encrypted one would let the answer depend
    # on whether a changed ciphertext "parsed": the other one decides it.
    encrypted = root.findall(f"{{{SAML}}}EncryptedAssertion")
    if encrypted and len(encrypted) + len(root.findall(f"{{{SAML}}}Assertion")) > 1:
        raise Rejected("invalid_response", "An encrypted assertion must be the response's only assertion.")


def inspect_document(saml_response: str) -> Inspection:
    """Decode and parse the document within the work bounds; refuse DTDs and non-responses.

    Call it after bounding the size (``MAX_RESPONSE_SIZE``): nothing is
    decoded before that.
    """
    root = _parse(_decode(saml_response))
    if root.tag != f"{{{SAMLP}}}Response":
        raise Rejected("malformed_response", "The document is not a SAML protocol Response.")
    _check_one_encrypted_assertion(root)
    issuer = _issuer_element(root)
    return Inspection(
        issuer=(issuer.text or "").strip() if issuer is not None else "",
        in_response_to=root.get("InResponseTo") or None,
        destination=root.get("Destination"),
        signed=root.find(DS_SIGNATURE) is not None,
        encryption=_encryption_methods(root),
    )


def check_encryption(inspection: Inspection, settings: IdPSettings) -> None:
    """Refuse encryption algorithms off the allow-list before anything is decrypted.

    What the document asks for is no secret: this answer is no oracle. CBC
    only with the IdP's ``ALLOW_CBC_ENCRYPTION``.
    """
    try:
        xmlenc.check(inspection.encryption, allow_cbc=settings.ALLOW_CBC_ENCRYPTION)
    except xmlenc.Unacceptable as exc:
        raise Rejected("encryption_algorithm", f"The response's encryption is refused: {exc}.") from None


def claimed_issuer(saml_response: str) -> str:
    """The Issuer a rejected response *claims*, for the event. Never trusted.

    Read within the same bounds as :func:`inspect_document` (an over-complex
    document still names its issuer first); nothing for an oversized one.
    """
    if len(saml_response) > app_settings.MAX_RESPONSE_SIZE:
        return ""
    try:
        root = bounds.parse(base64.b64decode(saml_response))
    except bounds.TooComplex as exc:
        root = exc.root
    except Exception:
        return ""
    issuer = _issuer_element(root) if root is not None else None
    text = (issuer.text or "").strip() if issuer is not None else ""
    if len(text) > ENTITY_ID_MAX_LENGTH or any(unicodedata.category(ch) == "Cc" for ch in text):
        return ""
    return text


def check_claimed_destination(inspection: Inspection, acs_urls: Collection[str]) -> None:
    """Refuse a document addressed elsewhere before spending a signature check on it.

    (pysaml2 would silently return no response for it.)
    """
    if inspection.destination is not None and inspection.destination not in acs_urls:
        raise Rejected("wrong_destination", "The response's Destination is not this site's ACS URL.")


def _uses_sha1(signature: Any) -> bool:
    if signature is None or signature.signed_info is None:
        return False
    info = signature.signed_info
    algorithms = {getattr(info.signature_method, "algorithm", None)}
    algorithms |= {getattr(ref.digest_method, "algorithm", None) for ref in info.reference or []}
    return bool(algorithms & SHA1_ALGORITHMS)


def _text(element: Any) -> str:
    return (element.text or "").strip() if element is not None else ""


def _check_issuer(response: Any, inspection: Inspection) -> str:
    """The verified issuer: the Response's, or (SAML Profiles §4.1.4.2) the assertion's.

    A Response may leave out its own ``<Issuer>`` when it is not signed; the
    assertion then names the IdP, and its signature was verified against that
    IdP's metadata. A signed Response must name who signed it.
    """
    message_issuer = response.issuer() or ""
    assertion_issuer = _text(response.assertion.issuer)
    if not message_issuer and response.response.signature is not None:
        raise Rejected("issuer_mismatch", "A signed Response must carry its own Issuer.")
    issuer = message_issuer or assertion_issuer
    if not issuer or (inspection.issuer and issuer != inspection.issuer):
        raise Rejected("issuer_mismatch", "The verified issuer differs from the one the document named.")
    if assertion_issuer and assertion_issuer != issuer:
        raise Rejected("issuer_mismatch", "The assertion's issuer differs from the response's.")
    return issuer


def _check_destination(response: Any, acs_urls: Collection[str]) -> None:
    message = response.response
    if message.destination is None and message.signature is None:
        return
    if message.destination not in acs_urls:
        raise Rejected("wrong_destination", "The response's Destination is not this site's ACS URL.")


def _check_audience(assertion: Any, sp_entity_id: str) -> None:
    conditions = assertion.conditions
    restrictions = conditions.audience_restriction if conditions is not None else None
    audiences = {(a.text or "").strip() for r in restrictions or [] for a in r.audience or []}
    if sp_entity_id not in audiences:
        raise Rejected("wrong_audience", "The assertion has no AudienceRestriction naming this site.")


def _check_bearer(assertion: Any, acs_urls: Collection[str], in_response_to: str | None) -> None:
    confirmations = assertion.subject.subject_confirmation if assertion.subject is not None else None
    for confirmation in confirmations or []:
        data = confirmation.subject_confirmation_data
        if confirmation.method != SCM_BEARER or data is None:
            continue
        if data.recipient in acs_urls and data.not_on_or_after and data.in_response_to == in_response_to:
            return
    raise Rejected(
        "subject_confirmation",
        "The assertion has no bearer confirmation for this site's ACS URL with NotOnOrAfter and a matching "
        "InResponseTo.",
    )


def _check_solicited(response: Any, outstanding: Mapping[str, Any], settings: IdPSettings) -> None:
    in_response_to = response.in_response_to
    if in_response_to:
        if in_response_to not in outstanding:
            raise Rejected("unsolicited", "The response answers a request this browser did not make.")
    elif not settings.ALLOW_IDP_INITIATED:
        raise Rejected("unsolicited", "IdP-initiated login is not enabled for this IdP.")


def _check_fresh(response: Any, max_age: int, skew: int) -> None:
    """pysaml2 accepts a Response IssueInstant up to a day old; a login takes seconds.

    The assertion's own IssueInstant too: a captured signed assertion wrapped
    in a new, unsigned response is as stale as the day it was issued. This
    bound is also how long the replay record must live (``replay.guard_window``).
    """
    now = datetime.now(timezone.utc)
    instants = (("response", response.response.issue_instant), ("assertion", response.assertion.issue_instant))
    for what, issued in instants:
        try:
            # pysaml2 is untyped: str_to_time() returns a struct_time (or 0 for no value, a TypeError here).
            issued_at = datetime(*cast(time.struct_time, str_to_time(issued))[:6], tzinfo=timezone.utc)
        except (TypeError, ValueError):
            raise Rejected("stale_response", f"The {what} has no valid IssueInstant.") from None
        age = (now - issued_at).total_seconds()
        if age > max_age + skew or age < -skew:
            raise Rejected("stale_response", f"The {what} was not issued just now (IssueInstant).")


def _check_algorithms(response: Any, settings: IdPSettings) -> None:
    if settings.ALLOW_SHA1:
        return
    if _uses_sha1(response.response.signature) or _uses_sha1(response.assertion.signature):
        raise Rejected("weak_algorithm", "The response is signed with SHA-1, which this IdP is not allowed to use.")


def verify_response(
    response: Any,
    inspection: Inspection,
    *,
    outstanding: Mapping[str, Any],
    acs_urls: Collection[str],
    sp_entity_id: str,
    settings_for: Any,
    max_age: int = 300,
    skew: int = 180,
) -> None:
    """Refuse what pysaml2 accepted but a careful SP must not."""
    _check_fresh(response, max_age, skew)
    issuer = _check_issuer(response, inspection)
    settings: IdPSettings = settings_for(issuer)
    _check_solicited(response, outstanding, settings)
    _check_destination(response, acs_urls)
    _check_audience(response.assertion, sp_entity_id)
    _check_bearer(response.assertion, acs_urls, response.in_response_to)
    _check_algorithms(response, settings)
