"""SP keys and self-signed certificates, written so they cannot leak by accident.

Used by ``manage.py saml_jit_keys`` (the SP's own signing and encryption
pairs), by the development IdP and by the test federation. Private keys are
created with mode 0600 from the first byte, and every folder written into
gets a ``.gitignore`` of ``*``: a key is never committed by mistake.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["ignore_folder", "write_keypair"]

#: Ten years: a development or SP certificate is trusted by pinning, not by its dates.
VALIDITY = dt.timedelta(days=3650)


def ignore_folder(folder: Path) -> None:
    """Create ``folder`` (0700 where new) with a ``.gitignore`` that ignores everything in it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")


def write_keypair(
    key_file: Path, cert_file: Path, common_name: str, *, overwrite: bool = False, validity: dt.timedelta = VALIDITY
) -> None:
    """Write an RSA-2048 key (PKCS#8 PEM, 0600) and its self-signed certificate, valid for ``validity``.

    Without ``overwrite`` an existing key is an error (``FileExistsError``):
    replacing an SP key silently breaks every IdP that trusts the old certificate.
    A negative ``validity`` makes a certificate that expired that long ago (tests of expiry).
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(key_file, pem, overwrite=overwrite)
    cert_file.write_bytes(self_signed_cert(key, common_name, validity).public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    # Created 0600 from the start: no window where the key is world-readable.
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an overwritten file keeps its old mode otherwise
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def self_signed_cert(key: rsa.RSAPrivateKey, common_name: str, validity: dt.timedelta = VALIDITY) -> x509.Certificate:
    """A CA:false certificate for ``key``, valid from a day before now (or before its end) for ``validity``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + validity
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - dt.timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
