"""IdP metadata for tests: documents as federations publish them, served over real HTTP.

:func:`metadata_document` turns a :class:`~saml_jit.testing.idp.TestIdP`'s
metadata into what an operator or a federation publishes — with
``validUntil``, ``cacheDuration``, extra signing certificates (a key
rollover) and an enveloped signature by a metadata signing key.
:class:`MetadataServer` serves such documents from ``127.0.0.1`` on a free
port, in a thread, and can be made to fail, so that the SP's fetching,
refreshing and refusing run against a real socket.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lxml import etree
from saml2.s_utils import sid
from saml2.sigver import pre_signature_part

from saml_jit.saml.backend import get_backend

from .keys import _cert_base64

__all__ = ["MetadataServer", "metadata_document"]

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"


def _instant(value: dt.datetime | float) -> str:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=value)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signing_key_descriptor(cert_file: str | os.PathLike[str]) -> Any:
    descriptor = etree.Element(f"{{{MD}}}KeyDescriptor", use="signing")
    info = etree.SubElement(descriptor, f"{{{DS}}}KeyInfo")
    data = etree.SubElement(info, f"{{{DS}}}X509Data")
    etree.SubElement(data, f"{{{DS}}}X509Certificate").text = _cert_base64(cert_file)
    return descriptor


def _add_signing_certs(root: Any, cert_files: Iterable[str | os.PathLike[str]]) -> None:
    role = root.find(f"{{{MD}}}IDPSSODescriptor")
    if role is None:
        raise ValueError("no IDPSSODescriptor to add certificates to")
    for cert_file in cert_files:
        role.insert(0, _signing_key_descriptor(cert_file))


def _sign(root: Any, key_file: str | os.PathLike[str], cert_file: str | os.PathLike[str]) -> bytes:
    node_id = root.get("ID")
    template = etree.fromstring(str(pre_signature_part(node_id, _cert_base64(cert_file))).encode("utf-8"))
    root.insert(0, template)  # ds:Signature is the first child of an EntityDescriptor
    xml = etree.tostring(root, encoding="unicode")
    signed = get_backend().sign_statement(xml, f"{MD}:EntityDescriptor", str(key_file), node_id)
    return signed.encode("utf-8")


def metadata_document(
    idp_metadata_xml: str,
    *,
    valid_until: dt.datetime | float | None = 7 * 86400,
    cache_duration: str | None = None,
    extra_signing_certs: Iterable[str | os.PathLike[str]] = (),
    signed_by: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
) -> bytes:
    """An ``EntityDescriptor`` as published: ``valid_until`` (seconds from now or a datetime; None for none),
    ``cache_duration`` (an ``xs:duration``), more signing certificates, signed with ``(key, cert)``.
    """
    root = etree.fromstring(idp_metadata_xml.encode("utf-8"))
    root.set("ID", root.get("ID") or sid())
    if valid_until is not None:
        root.set("validUntil", _instant(valid_until))
    if cache_duration is not None:
        root.set("cacheDuration", cache_duration)
    _add_signing_certs(root, extra_signing_certs)
    if signed_by is not None:
        return _sign(root, *signed_by)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        status, body = owner.answer(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "application/samlmetadata+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _Server(ThreadingHTTPServer):
    owner: MetadataServer
    daemon_threads = True


class MetadataServer:
    """An HTTP server on ``127.0.0.1`` (a free port) serving metadata documents by path.

    ``serve(path, body)`` publishes (or replaces) a document, ``fail(path,
    status)`` makes it answer an error, ``requests[path]`` counts GETs.
    Use as a context manager; :attr:`closed_url` names a port where nothing
    listens.
    """

    def __init__(self) -> None:
        self._documents: dict[str, tuple[int, bytes]] = {}
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="metadata-server", daemon=True)

    def __enter__(self) -> MetadataServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{path.lstrip('/')}"

    def serve(self, path: str, body: bytes, status: int = 200) -> str:
        with self._lock:
            self._documents["/" + path.lstrip("/")] = (status, body)
        return self.url(path)

    def fail(self, path: str, status: int = 503) -> None:
        self.serve(path, b"unavailable", status)

    def answer(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            self.requests[path.lstrip("/")] = self.requests.get(path.lstrip("/"), 0) + 1
            return self._documents.get(path, (404, b"not found"))
