"""Checks on HTTP-Redirect logout messages, which pysaml2 accepts unsigned.

Stock djangosaml2 accepts an unsigned LogoutRequest over HTTP-Redirect, so
anyone could log a person out with a link. These functions read the issuer a
message names (:func:`logout_issuer`) and verify the binding's detached
signature against that IdP's metadata certificates
(:func:`verify_redirect_signature`); both raise
:class:`~saml_jit.exceptions.Rejected`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection
from typing import cast
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from defusedxml.ElementTree import fromstring
from saml2.s_utils import decode_base64_and_inflate

from ..exceptions import Rejected
from .response import SAML_ISSUER

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


def logout_issuer(message: str) -> str:
    """The Issuer an (unverified) HTTP-Redirect logout message names."""
    try:
        root = fromstring(decode_base64_and_inflate(message), forbid_dtd=True)
    except Exception:  # base64, zlib and XML errors alike
        raise Rejected("malformed_logout", "The logout message could not be read.") from None
    issuer = root.find(SAML_ISSUER)
    return (issuer.text or "").strip() if issuer is not None and issuer.text else ""


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
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def verify_redirect_signature(query_string: str, certificates: Collection[str], allow_sha1: bool) -> None:
    """Verify an HTTP-Redirect binding signature (SAML bindings §3.4.4.1).

    The signed octets are rebuilt from the query string as received — never
    re-encoded, which is where re-encoding implementations go wrong — and
    checked against the IdP's signing certificates from its metadata (base64
    DER), never against a key the message brings.
    """
    params = _raw_query_params(query_string)
    kind = "SAMLRequest" if "SAMLRequest" in params else "SAMLResponse"
    algorithm = _algorithm(params, allow_sha1)
    signed = "&".join(f"{name}={params[name]}" for name in (kind, "RelayState", "SigAlg") if name in params)
    signature = _signature(params)
    if not any(_verifies(certificate, signature, signed, algorithm) for certificate in certificates):
        raise Rejected("logout_bad_signature", "The logout message's signature does not verify.", status=403)
