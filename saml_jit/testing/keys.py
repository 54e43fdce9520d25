"""Keys and certificates for the test federation, generated at run time.

No private key is ever committed: :func:`generate_keypair` writes into a
folder it marks git-ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["generate_keypair"]


def generate_keypair(
    directory: str | os.PathLike[str], name: str, common_name: str, *, days: int = 3650
) -> tuple[Path, Path]:
    """Return ``(key_file, cert_file)`` for ``name`` in ``directory``, creating them once.

    The key is RSA-2048 and the certificate self-signed for ``days`` (ten
    years; negative: expired that long ago — use a fresh directory for those),
    both PEM. The directory gets a ``.gitignore`` of ``*`` so a private key can
    never be committed by accident; existing files are reused so that
    metadata exchanged earlier stays valid across restarts.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    if key_file.exists() and cert_file.exists():
        return key_file, cert_file
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_file.write_bytes(_self_signed_cert(key, common_name, days).public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: no window where the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _self_signed_cert(key: rsa.RSAPrivateKey, common_name: str, days: int = 3650) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    not_after = now + dt.timedelta(days=days)
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


def _cert_base64(cert_file: str | os.PathLike[str]) -> str:
    """The base64 body of a PEM certificate, as SAML KeyInfo carries it."""
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
