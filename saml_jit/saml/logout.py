"""Single logout, on both bindings, held to the same rules.

pysaml2 (and so stock djangosaml2) accepts an unsigned LogoutRequest on either
binding, so anyone could log a person out with a link or a form; it accepts a
LogoutResponse nobody asked for, and the same one twice; a bad signature on a
POSTed LogoutResponse is silently ignored. Here, on HTTP-Redirect and
HTTP-POST alike:

* the message is read within bounds (:func:`read_logout_message`): one of
  ``SAMLRequest``/``SAMLResponse``, base64 (and, on HTTP-Redirect, DEFLATE,
  inflated to at most the size limit), XML without a DTD, of the type its
  parameter names;
* its Issuer is an IdP in this SP's metadata, and — unless the IdP's
  ``REQUIRE_SIGNED_LOGOUT`` is off — it is signed with one of that IdP's
  metadata signing certificates: the detached signature of the query string
  (:func:`verify_redirect_signature`) or the enveloped XML signature
  (:func:`verify_post_signature`, through the configured crypto backend).
  A signature that is present is always verified;
* its ``IssueInstant`` is recent (:func:`check_fresh`);
* a LogoutResponse answers a LogoutRequest this browser's SAML session sent
  to that IdP, once (:func:`claim_logout_request`);
* a LogoutRequest ends the session only when it names the subject this
  session signed in as, from that IdP (:func:`answer_logout_request`);
  otherwise the IdP is answered ``UnknownPrincipal`` and nobody is logged out.

Every failure raises :class:`~saml_jit.exceptions.Rejected`. Nothing here
touches models: the views record the events.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from defusedxml.ElementTree import fromstring
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.response import StatusError
from saml2.s_utils import status_message_factory, success_status_factory
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED
from saml2.samlp import STATUS_UNKNOWN_PRINCIPAL
from saml2.sigver import MissingKey, SignatureError, SigverError
from saml2.time_util import str_to_time

from ..exceptions import Rejected
from .limits import ENTITY_ID_MAX_LENGTH
from .response import SAML_ISSUER, SAMLP, SHA1_ALGORITHMS

logger = logging.getLogger(__name__)

REQUEST = "SAMLRequest"
RESPONSE = "SAMLResponse"
_ROOTS = {REQUEST: f"{{{SAMLP}}}LogoutRequest", RESPONSE: f"{{{SAMLP}}}LogoutResponse"}
_DS = "{http://www.w3.org/2000/09/xmldsig#}"
_DS_SIGNATURE = f"{_DS}Signature"

#: How bindings are named on events.
BINDING_NAMES = {BINDING_HTTP_REDIRECT: "redirect", BINDING_HTTP_POST: "post"}

_REDIRECT_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": "sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": "sha512",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": "sha1",
}

_DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _malformed(message: str, status: int = 400) -> Rejected:
    return Rejected("malformed_logout", message, status)


# -- reading ------------------------------------------------------------------


@dataclass(frozen=True)
class LogoutMessage:
    """A logout message as read (not yet trusted): what routing and the checks need."""

    #: ``SAMLRequest`` or ``SAMLResponse``.
    kind: str
    #: The parameter's value as received, for pysaml2.
    encoded: str
    #: The decoded document.
    xml: bytes
    #: The Issuer it names ("" when none, or longer than an entity ID may be).
    issuer: str
    in_response_to: str | None
    issue_instant: str | None
    #: Whether the root element carries an enveloped ``ds:Signature``.
    signed: bool
    #: The signature and digest algorithms that signature names.
    algorithms: frozenset[str] = frozenset()

    @property
    def is_request(self) -> bool:
        return self.kind == REQUEST


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("The logout message is not valid base64.") from None


def _inflate(data: bytes, limit: int) -> bytes:
    """Raw DEFLATE (SAML bindings §3.4.4.1), never to more than ``limit`` bytes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        xml = inflater.decompress(data, limit)
    except zlib.error:
        raise _malformed("The logout message is not DEFLATE-compressed.") from None
    if inflater.unconsumed_tail:
        raise _malformed("The logout message inflates beyond MAX_RESPONSE_SIZE.", status=413)
    return xml


def _decode(value: str, binding: str, limit: int) -> bytes:
    if len(value) > limit:
        raise _malformed("The logout message exceeds MAX_RESPONSE_SIZE.", status=413)
    data = _b64decode(value)
    return _inflate(data, limit) if binding == BINDING_HTTP_REDIRECT else data


def _parse(xml: bytes) -> Any:
    try:
        return fromstring(xml, forbid_dtd=True)
    except Exception:  # XML syntax, encodings, DTDs and entities alike
        raise _malformed("The logout message is not a well-formed XML document without a DTD.") from None


def _issuer(root: Any) -> str:
    element = root.find(SAML_ISSUER)
    issuer = (element.text or "").strip() if element is not None else ""
    return issuer if len(issuer) <= ENTITY_ID_MAX_LENGTH else ""


def _algorithms(signature: Any) -> frozenset[str]:
    if signature is None:
        return frozenset()
    found = signature.findall(f"{_DS}SignedInfo/{_DS}SignatureMethod")
    found += signature.findall(f"{_DS}SignedInfo/{_DS}Reference/{_DS}DigestMethod")
    return frozenset(element.get("Algorithm", "") for element in found)


def read_logout_message(data: Mapping[str, str], binding: str, limit: int) -> LogoutMessage:
    """The one logout message among a request's parameters, decoded and parsed; or :class:`Rejected`."""
    kinds = [kind for kind in (REQUEST, RESPONSE) if kind in data]
    if len(kinds) != 1:
        raise _malformed("The request must carry exactly one of SAMLRequest and SAMLResponse.")
    kind = kinds[0]
    encoded = data[kind]
    xml = _decode(encoded, binding, limit)
    root = _parse(xml)
    if root.tag != _ROOTS[kind]:
        raise _malformed(f"The {kind} parameter does not hold a {_ROOTS[kind].rpartition('}')[2]}.")
    signature = root.find(_DS_SIGNATURE)
    return LogoutMessage(
        kind=kind,
        encoded=encoded,
        xml=xml,
        issuer=_issuer(root),
        in_response_to=root.get("InResponseTo"),
        issue_instant=root.get("IssueInstant"),
        signed=signature is not None,
        algorithms=_algorithms(signature),
    )


def check_fresh(message: LogoutMessage, max_age: int, skew: int, now: float | None = None) -> None:
    """Refuse a message issued more than ``max_age`` + ``skew`` seconds ago, or ``skew`` ahead.

    pysaml2 computes whether a LogoutRequest's ``IssueInstant`` is within a day
    and then ignores the answer.
    """
    try:
        # pysaml2 is untyped: str_to_time() returns a struct_time in UTC (0 for no value: a TypeError here).
        issued = float(calendar.timegm(cast(time.struct_time, str_to_time(message.issue_instant or ""))))
    except Exception:  # ValueError, TypeError, AttributeError for a missing or malformed time
        raise _malformed("The logout message has no valid IssueInstant.") from None
    now = time.time() if now is None else now
    if issued < now - max_age - skew or issued > now + skew:
        raise Rejected("stale_logout", "The logout message's IssueInstant is out of range.")


# -- signatures -----------------------------------------------------------------


def _raw_query_params(query_string: str) -> dict[str, str]:
    """Parameters with their values exactly as URL-encoded by the sender."""
    params: dict[str, str] = {}
    for part in query_string.split("&"):
        name, _, value = part.partition("=")
        if name in params:
            raise Rejected("logout_bad_signature", f"The parameter {name} appears twice.")
        params[name] = value
    return params


def _algorithm(params: dict[str, str], allow_sha1: bool) -> str:
    if "Signature" not in params or "SigAlg" not in params:
        raise Rejected("logout_unsigned", "The logout message is not signed.", status=403)
    algorithm = _REDIRECT_ALGORITHMS.get(unquote_plus(params["SigAlg"]))
    if algorithm is None or (algorithm == "sha1" and not allow_sha1):
        raise Rejected("weak_algorithm", "The logout message is signed with an algorithm not allowed here.", status=403)
    return algorithm


def _signature(params: dict[str, str]) -> bytes:
    try:
        return base64.b64decode(unquote_plus(params["Signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(
            "logout_bad_signature", "The logout message's signature is not valid base64.", status=403
        ) from None


def _verifies(certificate: str, signature: bytes, signed: str, algorithm: str) -> bool:
    # Only RSA keys take a padding: any other key type raises TypeError in verify() and is skipped.
    key = cast(rsa.RSAPublicKey, x509.load_der_x509_certificate(base64.b64decode(certificate)).public_key())
    try:
        key.verify(signature, signed.encode("ascii"), padding.PKCS1v15(), _DIGESTS[algorithm]())
    except (InvalidSignature, TypeError, ValueError, UnicodeEncodeError):
        return False
    return True


def is_redirect_signed(query_string: str) -> bool:
    params = _raw_query_params(query_string)
    return "Signature" in params or "SigAlg" in params


def verify_redirect_signature(query_string: str, certificates: Collection[str], allow_sha1: bool) -> None:
    """Verify an HTTP-Redirect binding signature (SAML bindings §3.4.4.1).

    The signed octets are rebuilt from the query string as received — never
    re-encoded, which is where re-encoding implementations go wrong — and
    checked against the IdP's signing certificates from its metadata (base64
    DER), never against a key the message brings.
    """
    params = _raw_query_params(query_string)
    kind = REQUEST if REQUEST in params else RESPONSE
    algorithm = _algorithm(params, allow_sha1)
    signed = "&".join(f"{name}={params[name]}" for name in (kind, "RelayState", "SigAlg") if name in params)
    signature = _signature(params)
    if not any(_verifies(certificate, signature, signed, algorithm) for certificate in certificates):
        raise Rejected("logout_bad_signature", "The logout message's signature does not verify.", status=403)


def verify_post_signature(message: LogoutMessage, security_context: Any, allow_sha1: bool) -> None:
    """Verify the enveloped signature of a POSTed logout message with the Issuer's metadata certificates.

    ``security_context`` is the pysaml2 client's (``client.sec``): with
    saml_jit's crypto backend it checks in-process (``saml_jit.saml.backend``),
    against the certificates in the metadata only, never a key in ``KeyInfo``.
    """
    if not message.signed:
        raise Rejected("logout_unsigned", "The logout message is not signed.", status=403)
    if message.algorithms & SHA1_ALGORITHMS and not allow_sha1:
        raise Rejected("weak_algorithm", "The logout message is signed with SHA-1, not allowed here.", status=403)
    check = (
        security_context.correctly_signed_logout_request
        if message.is_request
        else security_context.correctly_signed_logout_response
    )
    try:
        verified = check(message.xml, must=True)
    except (SignatureError, MissingKey, SigverError) as exc:
        raise Rejected("logout_bad_signature", f"The signature does not verify ({type(exc).__name__}).", 403) from None
    except Exception as exc:  # schema and parsing errors of many types
        raise _malformed(f"The logout message is not valid ({type(exc).__name__}).") from None
    if not verified:
        raise Rejected("logout_bad_signature", "The logout message's signature does not verify.", status=403)


# -- SP-initiated: the LogoutResponse --------------------------------------------


def claim_logout_request(state: MutableMapping[str, Any], message: LogoutMessage) -> dict[str, Any]:
    """Remove and return the state of the LogoutRequest that ``message`` answers.

    ``state`` is djangosaml2's ``StateCache`` of this browser's SAML session,
    where pysaml2 keeps each LogoutRequest it sent (``operation == "SLO"``,
    the IdP's ``entity_id``). An answer to no request of this session, or
    from another IdP, is refused; once claimed, the same answer is unsolicited.
    """
    key = message.in_response_to or ""
    entry = state.get(key) if key else None
    if not isinstance(entry, dict) or entry.get("operation") != "SLO" or entry.get("entity_id") != message.issuer:
        raise Rejected(
            "unsolicited_logout", "The LogoutResponse answers no LogoutRequest this session sent to its issuer."
        )
    del state[key]
    return entry


def parse_logout_response(client: Any, message: LogoutMessage, binding: str) -> Any:
    """pysaml2's checks of a LogoutResponse (destination, version, time): its response, None if it reports failure."""
    try:
        response = client.parse_logout_request_response(message.encoded, binding)
    except StatusError:  # authentic, but the IdP could not log the person out there
        return None
    except Exception as exc:  # pysaml2 raises many unrelated types
        raise _malformed(f"pysaml2 refused the LogoutResponse ({type(exc).__name__}).") from None
    if response is None:
        raise _malformed("pysaml2 found no LogoutResponse.")
    return response


# -- SP-initiated: the LogoutRequest ---------------------------------------------


@dataclass(frozen=True)
class SentLogout:
    """The LogoutRequest sent to an IdP, and how the browser takes it there."""

    idp_entity_id: str
    binding: str
    http_info: dict[str, Any]


def issuers_of(client: Any, subject: Any) -> list[str]:
    """The IdPs this SAML session's identity cache holds ``subject`` from."""
    if subject is None:
        return []
    try:
        return list(client.users.issuers_of_info(subject))
    except (KeyError, AttributeError, ValueError):  # nothing cached for this subject
        return []


def forget(client: Any, subject: Any) -> None:
    """Drop ``subject`` from the session's identity cache (pysaml2's local logout)."""
    with contextlib.suppress(KeyError, AttributeError, ValueError):
        client.local_logout(subject)


def start_logout(client: Any, subject: Any) -> SentLogout | None:
    """Send a LogoutRequest for ``subject`` to the IdP it signed in with; None when there is none to tell.

    None when this session holds no SAML identity (a local sign-in, an ended
    SAML session) or the IdP offers no usable logout endpoint: the caller then
    logs out locally.
    """
    if not issuers_of(client, subject):
        return None
    try:
        result = client.global_logout(subject)
    except Exception as exc:  # LogoutError, UnsupportedBinding, metadata look-ups
        logger.warning("saml_jit single logout not sent: %s", type(exc).__name__)
        return None
    for entity_id, info in (result or {}).items():
        if isinstance(info, tuple) and info[0] in BINDING_NAMES:
            return SentLogout(idp_entity_id=entity_id, binding=info[0], http_info=info[1])
    return None


# -- IdP-initiated: the LogoutRequest --------------------------------------------


def same_subject(requested: Any, stored: Any) -> bool:
    """Whether a LogoutRequest's NameID names the stored one: same value and format, no conflicting qualifier."""
    if requested is None or stored is None:
        return False
    if (requested.text or "").strip() != (stored.text or "").strip() or not (stored.text or "").strip():
        return False
    if (requested.format or NAMEID_FORMAT_UNSPECIFIED) != (stored.format or NAMEID_FORMAT_UNSPECIFIED):
        return False
    for qualifier in ("name_qualifier", "sp_name_qualifier"):
        mine, theirs = getattr(stored, qualifier, None), getattr(requested, qualifier, None)
        if mine and theirs and mine != theirs:
            return False
    return True


@dataclass(frozen=True)
class LogoutAnswer:
    """What to do with an IdP's verified LogoutRequest."""

    #: The request names this session's subject: end the session.
    matched: bool
    #: How to answer the IdP (a redirect or a POST form); None when it has no usable endpoint.
    http_info: dict[str, Any] | None
    #: ``elsewhere`` ended the named person's sessions (this browser held none of theirs).
    ended_elsewhere: bool = False


def _parsed_request(client: Any, message: LogoutMessage, binding: str) -> Any:
    try:
        request = client.parse_logout_request(message.encoded, binding)
    except Exception as exc:  # pysaml2 raises many unrelated types
        raise _malformed(f"pysaml2 refused the LogoutRequest ({type(exc).__name__}).") from None
    if request is None or request.message is None:
        raise _malformed("pysaml2 found no LogoutRequest.")
    return request.message


def _bound_response(client: Any, request: Any, binding: str, relay_state: str, status: Any) -> dict[str, Any] | None:
    """The LogoutResponse on the binding the request came by, else the other one (as pysaml2 does)."""
    other = BINDING_HTTP_POST if binding == BINDING_HTTP_REDIRECT else BINDING_HTTP_REDIRECT
    for response_binding in (binding, other):
        sign = bool(client.logout_responses_signed)
        sign_redirect = sign and response_binding == BINDING_HTTP_REDIRECT
        try:
            response = client.create_logout_response(
                request, bindings=[response_binding], status=status, sign=sign and not sign_redirect
            )
            rinfo = client.response_args(request, [response_binding])
            return cast(
                "dict[str, Any]",
                client.apply_binding(
                    rinfo["binding"], response, rinfo["destination"], relay_state, response=True, sign=sign_redirect
                ),
            )
        except Exception as exc:  # no endpoint for this binding in the IdP's metadata
            logger.info("saml_jit no LogoutResponse on %s: %s", BINDING_NAMES[response_binding], type(exc).__name__)
    return None


def answer_logout_request(
    client: Any,
    message: LogoutMessage,
    binding: str,
    relay_state: str,
    stored: Any,
    elsewhere: Callable[[str], bool] | None = None,
) -> LogoutAnswer:
    """Decide on a verified LogoutRequest and build the LogoutResponse for the IdP.

    ``stored`` is the NameID this session signed in with (None when it holds
    none). A request naming it, from the IdP it came from, ends the session
    (answered Success). Otherwise ``elsewhere``, when given, is asked to end
    the sessions of the subject the request names (the caller decides
    whether it may, and whether it knows that person): Success when it did,
    else UnknownPrincipal.
    """
    request = _parsed_request(client, message, binding)
    matched = same_subject(request.name_id, stored) and message.issuer in issuers_of(client, stored)
    ended_elsewhere = False
    if matched:
        forget(client, stored)
    elif elsewhere is not None and request.name_id is not None and (request.name_id.text or "").strip():
        ended_elsewhere = elsewhere(request.name_id.text.strip())
    if matched or ended_elsewhere:
        status = success_status_factory()
    else:
        status = status_message_factory("Unknown principal", STATUS_UNKNOWN_PRINCIPAL)
    http_info = _bound_response(client, request, binding, relay_state, status)
    return LogoutAnswer(matched=matched, http_info=http_info, ended_elsewhere=ended_elsewhere)
