"""XML Encryption as the test IdP does it: every algorithm an SP meets, and every breakage a test needs.

Implemented with ``cryptography``, independently of the libxmlsec1 that the
SP decrypts with, so that the two check each other. :class:`Encryption` (the
``encryption`` field of :class:`~saml_jit.testing.responses.ResponseSpec`)
chooses the algorithms, and can replace the plaintext, the CBC padding, the
ciphertext or the wrapped key, to build exactly the broken messages a
decryption-oracle attacker would send::

    Encryption()                                     # AES-256-GCM, RSA-OAEP-MGF1P (Shibboleth v4+)
    Encryption(data=AES128_CBC)                      # what older IdPs send
    Encryption(key_transport=RSA_OAEP, digest=SHA256, mgf=MGF1_SHA256)
    Encryption(plaintext=lambda assertion: b"not XML")
    Encryption(data=AES256_CBC, padding=bad_padding)
    Encryption(ciphertext=flip(-1))                  # last byte of the ciphertext changed
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from saml_jit.saml.encryption import (
    AES128_CBC,
    AES128_GCM,
    AES256_CBC,
    AES256_GCM,
    DS,
    MGF1_SHA1,
    MGF1_SHA256,
    RSA_1_5,
    RSA_OAEP,
    RSA_OAEP_MGF1P,
    SHA1,
    SHA256,
    XENC,
    XENC11,
)

__all__ = [
    "AES128_CBC",
    "AES128_GCM",
    "AES192_CBC",
    "AES192_GCM",
    "AES256_CBC",
    "AES256_GCM",
    "DEFAULT_ENCRYPTION",
    "MGF1_SHA1",
    "MGF1_SHA256",
    "RSA_1_5",
    "RSA_OAEP",
    "RSA_OAEP_MGF1P",
    "SHA1",
    "SHA256",
    "SHA512",
    "Encryption",
    "bad_padding",
    "encrypted_data",
    "flip",
    "xmlenc_padding",
]

#: Off saml_jit's allow-list, for tests that it is refused.
AES192_GCM = f"{XENC11}aes192-gcm"
AES192_CBC = f"{XENC}aes192-cbc"
SHA512 = f"{XENC}sha512"

_KEY_BYTES = {AES128_GCM: 16, AES192_GCM: 24, AES256_GCM: 32, AES128_CBC: 16, AES192_CBC: 24, AES256_CBC: 32}
_HASHES: dict[str | None, type[hashes.HashAlgorithm]] = {
    None: hashes.SHA1,
    SHA1: hashes.SHA1,
    SHA256: hashes.SHA256,
    SHA512: hashes.SHA512,
    MGF1_SHA1: hashes.SHA1,
    MGF1_SHA256: hashes.SHA256,
}
_BLOCK = 16


def xmlenc_padding(data: bytes) -> bytes:
    """XML Encryption's block padding (1 to 16 bytes, the last one their count), as PKCS#7 does it."""
    count = _BLOCK - len(data) % _BLOCK
    return data + bytes([count]) * count


def bad_padding(data: bytes) -> bytes:
    """A padding whose last byte is no valid count: a padding oracle's "invalid" case."""
    count = _BLOCK - len(data) % _BLOCK
    return data + bytes(count - 1) + b"\xff"


def flip(position: int, mask: int = 0x01) -> Callable[[bytes], bytes]:
    """Change one byte of a ciphertext (negative positions count from the end)."""

    def change(data: bytes) -> bytes:
        index = position % len(data)
        return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]

    return change


@dataclasses.dataclass(frozen=True, kw_only=True)
class Encryption:
    """How the test IdP encrypts the assertion; the defaults are Shibboleth IdP v4's choice."""

    #: Content encryption (``EncryptedData``): AES-GCM or AES-CBC, 128 or 256 bits.
    data: str = AES256_GCM
    #: Key transport (``EncryptedKey``): RSA-OAEP-MGF1P, xmlenc 1.1 RSA-OAEP or RSA-1_5.
    key_transport: str = RSA_OAEP_MGF1P
    #: The OAEP ``DigestMethod``; None leaves it out (SHA-1).
    digest: str | None = None
    #: The xmlenc 1.1 ``MGF`` (``RSA_OAEP`` only); None leaves it out (MGF1 with SHA-1).
    mgf: str | None = None
    #: Replaces the plaintext: called with the serialised (signed) assertion.
    plaintext: Callable[[bytes], bytes] | None = None
    #: CBC padding (default :func:`xmlenc_padding`; :func:`bad_padding` breaks it).
    padding: Callable[[bytes], bytes] | None = None
    #: Changes the content ciphertext (IV, ciphertext and GCM tag), e.g. :func:`flip`.
    ciphertext: Callable[[bytes], bytes] | None = None
    #: Changes the RSA-encrypted session key.
    wrapped_key: Callable[[bytes], bytes] | None = None


#: AES-256-GCM with RSA-OAEP-MGF1P: the test IdP's default, as Shibboleth IdP v4's.
DEFAULT_ENCRYPTION = Encryption()


def _encrypt_content(spec: Encryption, key: bytes, plaintext: bytes) -> bytes:
    if spec.data in (AES128_GCM, AES192_GCM, AES256_GCM):
        iv = os.urandom(12)
        return iv + AESGCM(key).encrypt(iv, plaintext, None)
    iv = os.urandom(_BLOCK)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    padded = (spec.padding or xmlenc_padding)(plaintext)
    return iv + encryptor.update(padded) + encryptor.finalize()


def _wrap_key(spec: Encryption, public_key: RSAPublicKey, key: bytes) -> bytes:
    if spec.key_transport == RSA_1_5:
        return public_key.encrypt(key, rsa_padding.PKCS1v15())
    mgf = _HASHES[spec.mgf if spec.key_transport == RSA_OAEP else None]
    oaep = rsa_padding.OAEP(mgf=rsa_padding.MGF1(mgf()), algorithm=_HASHES[spec.digest](), label=None)
    return public_key.encrypt(key, oaep)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _sub(parent: etree._Element, namespace: str, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{namespace}}}{name}", attributes)


def _cipher_data(parent: etree._Element, value: bytes) -> None:
    _sub(_sub(parent, XENC, "CipherData"), XENC, "CipherValue").text = _b64(value)


def _encrypted_key(parent: etree._Element, spec: Encryption, cert_pem: bytes, wrapped: bytes) -> None:
    key = _sub(parent, XENC, "EncryptedKey", Id=f"EK_{os.urandom(8).hex()}")
    method = _sub(key, XENC, "EncryptionMethod", Algorithm=spec.key_transport)
    if spec.digest:
        _sub(method, DS, "DigestMethod", Algorithm=spec.digest)
    if spec.mgf:
        _sub(method, XENC11, "MGF", Algorithm=spec.mgf)
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    _sub(_sub(_sub(key, DS, "KeyInfo"), DS, "X509Data"), DS, "X509Certificate").text = _b64(der)
    _cipher_data(key, (spec.wrapped_key or (lambda data: data))(wrapped))


def encrypted_data(plaintext: bytes, cert_pem: bytes, spec: Encryption) -> etree._Element:
    """An ``xenc:EncryptedData`` (Type Element) holding ``plaintext``, its key wrapped for the certificate."""
    session_key = os.urandom(_KEY_BYTES[spec.data])
    public_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    assert isinstance(public_key, RSAPublicKey), "the test IdP encrypts for RSA certificates only"
    nsmap = {"xenc": XENC, "ds": DS, **({"xenc11": XENC11} if spec.mgf else {})}
    data = etree.Element(f"{{{XENC}}}EncryptedData", nsmap=nsmap, Id=f"ED_{os.urandom(8).hex()}", Type=f"{XENC}Element")
    _sub(data, XENC, "EncryptionMethod", Algorithm=spec.data)
    _encrypted_key(_sub(data, DS, "KeyInfo"), spec, cert_pem, _wrap_key(spec, public_key, session_key))
    ciphertext = _encrypt_content(spec, session_key, (spec.plaintext or (lambda text: text))(plaintext))
    _cipher_data(data, (spec.ciphertext or (lambda text: text))(ciphertext))
    return data
