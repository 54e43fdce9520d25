"""XML Encryption: which algorithms saml_jit decrypts, checked before anything is decrypted.

Accepted by default (what Shibboleth IdP v4+ and current IdPs send):

* content: AES-GCM, 128 or 256 bits (authenticated encryption: a changed
  ciphertext is refused before any plaintext exists);
* key transport: RSA-OAEP, as ``xmlenc#rsa-oaep-mgf1p`` or
  ``xmlenc11#rsa-oaep``, with a SHA-1 or SHA-256 digest (and, for the
  latter, MGF1 with SHA-1 or SHA-256). SHA-1 inside OAEP is not the SHA-1 of
  signatures: no collision helps an attacker there.

AES-CBC (128 or 256 bits) only for an IdP that opts in
(``ALLOW_CBC_ENCRYPTION``): it is malleable, and an SP that answers
differently depending on what a changed ciphertext decrypts to is a
decryption oracle (Jager and Somorovsky, "How to break XML Encryption",
2011). saml_jit gives every decryption failure the same answer
(:mod:`saml_jit.saml.decryption`), so the opt-in is for IdPs that cannot do
better, not a hole.

Never: RSA PKCS#1 v1.5 key transport (``rsa-1_5``, Bleichenbacher's attack;
Jager, Schinzel and Somorovsky, "Bleichenbacher's attack strikes again",
2012 — and accepting it for one IdP would expose the SP's key for all),
3DES, key agreement, derived keys, key wrapping, ciphertext fetched from a
``CipherReference`` and ``RetrievalMethod`` references out of the document.

:func:`methods` reads what a document asks for; :func:`check` judges it.
Both run on the document pysaml2 is about to decrypt, whatever the crypto
backend, and the in-process backend checks again before it decrypts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AES128_CBC",
    "AES128_GCM",
    "AES256_CBC",
    "AES256_GCM",
    "CBC",
    "GCM",
    "MGF1_SHA1",
    "MGF1_SHA256",
    "RSA_1_5",
    "RSA_OAEP",
    "RSA_OAEP_MGF1P",
    "SHA1",
    "SHA256",
    "Method",
    "Unacceptable",
    "check",
    "methods",
]

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"

AES128_GCM = f"{XENC11}aes128-gcm"
AES256_GCM = f"{XENC11}aes256-gcm"
AES128_CBC = f"{XENC}aes128-cbc"
AES256_CBC = f"{XENC}aes256-cbc"
RSA_OAEP_MGF1P = f"{XENC}rsa-oaep-mgf1p"
RSA_OAEP = f"{XENC11}rsa-oaep"
RSA_1_5 = f"{XENC}rsa-1_5"
SHA1 = f"{DS}sha1"
SHA256 = f"{XENC}sha256"
MGF1_SHA1 = f"{XENC11}mgf1sha1"
MGF1_SHA256 = f"{XENC11}mgf1sha256"

GCM = frozenset({AES128_GCM, AES256_GCM})
CBC = frozenset({AES128_CBC, AES256_CBC})
KEY_TRANSPORTS = frozenset({RSA_OAEP_MGF1P, RSA_OAEP})
#: OAEP digests; no DigestMethod means SHA-1.
OAEP_DIGESTS = frozenset({SHA1, SHA256})
#: xmlenc11#rsa-oaep mask generation; no MGF means MGF1 with SHA-1.
MGFS = frozenset({MGF1_SHA1, MGF1_SHA256})

CONTENT = "content"
KEY = "key"

_ENCRYPTED = {f"{{{XENC}}}EncryptedData": CONTENT, f"{{{XENC}}}EncryptedKey": KEY}
_METHOD = f"{{{XENC}}}EncryptionMethod"
_DIGEST = f"{{{DS}}}DigestMethod"
_MGF = f"{{{XENC11}}}MGF"
#: Never accepted, wherever they appear: key agreement, derived keys,
#: ciphertext fetched by URI.
_FORBIDDEN = {
    f"{{{XENC}}}AgreementMethod": "key agreement",
    f"{{{XENC11}}}DerivedKey": "derived keys",
    f"{{{XENC}}}CipherReference": "a CipherReference",
}
_RETRIEVAL_METHOD = f"{{{DS}}}RetrievalMethod"


class Unacceptable(ValueError):
    """The document asks for encryption saml_jit does not accept; the message says which."""


@dataclass(frozen=True)
class Method:
    """One ``EncryptionMethod``: of an ``EncryptedData`` (``content``) or an ``EncryptedKey`` (``key``)."""

    role: str
    algorithm: str
    digest: str | None = None
    mgf: str | None = None


def _method(element: Any, role: str) -> Method:
    method = element.find(_METHOD)
    if method is None or not method.get("Algorithm"):
        raise Unacceptable(f"an {element.tag.rpartition('}')[2]} without an EncryptionMethod")
    digest = method.find(_DIGEST)
    mgf = method.find(_MGF)
    return Method(
        role=role,
        algorithm=method.get("Algorithm"),
        digest=digest.get("Algorithm") if digest is not None else None,
        mgf=mgf.get("Algorithm") if mgf is not None else None,
    )


def methods(root: Any) -> tuple[Method, ...]:
    """Every encryption method in the (lxml) document ``root``, in document order.

    Raises :class:`Unacceptable` for what is refused whatever the algorithms:
    key agreement, derived keys, a ``CipherReference``, a ``RetrievalMethod``
    out of the document, an ``EncryptedData``/``EncryptedKey`` without an
    ``EncryptionMethod``.
    """
    found = []
    for element in root.iter(*_ENCRYPTED, *_FORBIDDEN, _RETRIEVAL_METHOD):
        tag = element.tag
        if tag in _FORBIDDEN:
            raise Unacceptable(f"{_FORBIDDEN[tag]} is never accepted")
        if tag == _RETRIEVAL_METHOD:
            uri = element.get("URI", "")
            if not uri.startswith("#") or len(uri) < 2:
                raise Unacceptable("only same-document RetrievalMethod references are followed")
            continue
        found.append(_method(element, _ENCRYPTED[tag]))
    return tuple(found)


def _check_key_transport(method: Method) -> None:
    if method.algorithm == RSA_1_5:
        raise Unacceptable("RSA PKCS#1 v1.5 key transport (rsa-1_5) is never accepted")
    if method.algorithm not in KEY_TRANSPORTS:
        raise Unacceptable(f"key transport {method.algorithm!r} is not accepted")
    if method.digest is not None and method.digest not in OAEP_DIGESTS:
        raise Unacceptable(f"OAEP digest {method.digest!r} is not accepted")
    if method.mgf is not None and (method.algorithm == RSA_OAEP_MGF1P or method.mgf not in MGFS):
        raise Unacceptable(f"mask generation {method.mgf!r} is not accepted with {method.algorithm!r}")


def _check_content(method: Method, allow_cbc: bool) -> None:
    if method.algorithm in GCM or (allow_cbc and method.algorithm in CBC):
        return
    if method.algorithm in CBC:
        raise Unacceptable("AES-CBC content encryption is not enabled for this IdP (ALLOW_CBC_ENCRYPTION)")
    raise Unacceptable(f"content encryption {method.algorithm!r} is not accepted")


def check(found: Iterable[Method], *, allow_cbc: bool) -> None:
    """Raise :class:`Unacceptable` unless every method is on the allow-list (CBC too with ``allow_cbc``)."""
    for method in found:
        if method.role == KEY:
            _check_key_transport(method)
        else:
            _check_content(method, allow_cbc)
