"""The certificates IdP metadata publishes: who they name and when they expire.

For ``saml_jit_metadata`` and the system checks: read from metadata XML (the
good copies of ``SAML_JIT["METADATA"]`` and the ``inline``/``local`` entries
of ``SAML_CONFIG``), never by building an SP configuration, so a check run
fetches nothing.

An IdP's signing certificate is a key carrier: pysaml2 and saml_jit trust
the key the metadata names and ignore the certificate's dates (so do
Shibboleth and most federations). An expiring one is still worth a warning:
it is usually when an IdP operator rolls the key, and an SP that has not
refreshed metadata by then stops accepting logins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .metadata import FETCH_FAILED, MD, MetadataRefused, parse_document

__all__ = ["CertificateInfo", "certificates", "configured_documents"]

DS = "http://www.w3.org/2000/09/xmldsig#"
_ROLES = {"IDPSSODescriptor": "idp", "SPSSODescriptor": "sp", "AttributeAuthorityDescriptor": "aa"}


@dataclass(frozen=True)
class CertificateInfo:
    """One certificate of one role of one entity, as metadata publishes it."""

    entity_id: str
    role: str
    #: "signing", "encryption", or "signing, encryption" (a KeyDescriptor without ``use``).
    use: str
    subject: str
    not_after: datetime
    sha256: str

    def expires_within(self, now: datetime, days: int) -> bool:
        return self.not_after - now <= timedelta(days=days)

    @property
    def signs(self) -> bool:
        return "signing" in self.use


def _load(text: str) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True))
    except (binascii.Error, ValueError):
        return None


def _key_descriptors(entity: Any) -> Iterator[tuple[str, str, Any]]:
    for local, role in _ROLES.items():
        for descriptor in entity.iterfind(f"{{{MD}}}{local}"):
            for key in descriptor.iterfind(f"{{{MD}}}KeyDescriptor"):
                yield role, key.get("use") or "signing, encryption", key


def _entity_certificates(entity: Any) -> Iterator[CertificateInfo]:
    for role, use, key in _key_descriptors(entity):
        for element in key.iter(f"{{{DS}}}X509Certificate"):
            cert = _load(element.text or "")
            if cert is None:
                continue
            yield CertificateInfo(
                entity_id=entity.get("entityID") or "",
                role=role,
                use=use,
                subject=cert.subject.rfc4514_string(),
                not_after=cert.not_valid_after_utc,
                sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
            )


def certificates(xml: bytes | str) -> list[CertificateInfo]:
    """Every certificate of every entity in a metadata document (:class:`MetadataRefused` if it is not one)."""
    root = parse_document(xml.encode("utf-8") if isinstance(xml, str) else xml)
    entities = [root] if root.tag == f"{{{MD}}}EntityDescriptor" else list(root.iter(f"{{{MD}}}EntityDescriptor"))
    return [info for entity in entities for info in _entity_certificates(entity)]


def _local_files(paths: Iterable[Any]) -> Iterator[tuple[str, bytes]]:
    for item in paths:
        path = Path(os.fspath(item))
        for file in sorted(path.iterdir()) if path.is_dir() else [path]:
            if file.is_file():
                yield str(file), file.read_bytes()


def configured_documents(saml_config: dict[str, Any]) -> list[tuple[str, bytes]]:
    """``(label, xml)`` of the metadata ``SAML_CONFIG`` carries itself (``inline`` and ``local``; not ``remote``)."""
    sources = dict(saml_config.get("metadata") or {})
    documents = [
        (f"SAML_CONFIG inline #{number}", text.encode("utf-8") if isinstance(text, str) else bytes(text))
        for number, text in enumerate(sources.get("inline") or [], start=1)
    ]
    try:
        documents += list(_local_files(sources.get("local") or []))
    except OSError as exc:
        raise MetadataRefused(FETCH_FAILED, f"{type(exc).__name__}: {exc.strerror}") from None
    return documents
