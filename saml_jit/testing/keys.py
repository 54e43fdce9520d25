"""Keys and certificates for the test federation, generated at run time.

No private key is ever committed: :func:`generate_keypair` writes into a
folder it marks git-ignored.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from saml_jit.keygen import ignore_folder, write_keypair

__all__ = ["generate_keypair"]


def generate_keypair(
    directory: str | os.PathLike[str], name: str, common_name: str, *, days: int = 3650
) -> tuple[Path, Path]:
    """Return ``(key_file, cert_file)`` for ``name`` in ``directory``, creating them once.

    The key is RSA-2048 and the certificate self-signed for ``days`` (ten
    years; negative: expired that long ago — use a fresh directory for those),
    both PEM (:func:`saml_jit.keygen.write_keypair`). The directory gets a ``.gitignore`` of ``*`` so a private key can
    never be committed by accident; existing files are reused so that
    metadata exchanged earlier stays valid across restarts.
    """
    folder = Path(directory)
    ignore_folder(folder)
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    with _exclusive(folder / f".{name}.lock"):
        if not (key_file.exists() and cert_file.exists()):
            write_keypair(key_file, cert_file, common_name, overwrite=True, validity=dt.timedelta(days=days))
    return key_file, cert_file


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an inter-process lock on ``lock_file``: test runs side by side (CI runs two) share the keys folder.

    Without it, two processes that both find no key pair both write one, and
    one of them can read the other's key beside its own certificate. Where
    there is no ``fcntl`` (Windows), run one test process per keys folder.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cert_base64(cert_file: str | os.PathLike[str]) -> str:
    """The base64 body of a PEM certificate, as SAML KeyInfo carries it."""
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
