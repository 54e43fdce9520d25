"""IdP metadata that lives: fetched, checked, kept and refreshed (``SAML_JIT["METADATA"]``).

pysaml2's ``remote`` metadata is fetched once, when the SP configuration is
built, and its checks are loose: a configured signer certificate is not
required to have signed anything (unsigned metadata passes), and a fetch that
fails makes the whole configuration fail. Here each source is

* read from its URL (or file) at most every ``METADATA_REFRESH`` seconds, and
  sooner when the document's ``cacheDuration`` or ``validUntil`` say so;
* refused when it has expired (saml2int SDP-MD03), is not metadata, or — with
  a ``cert`` configured — is not signed by that certificate (the signature
  must cover the root element: no wrapping);
* kept as the *last good copy* in the Django cache (``METADATA_CACHE``,
  shared by every node) and optionally in a per-node file
  (``METADATA_DIR``, which survives a cache flush). A failed or refused
  fetch leaves the last good copy serving until it expires itself.

Only one node fetches a source at a time (a cache lock), and after a failure
nobody fetches it again for ``METADATA_RETRY`` seconds: N app servers do not
stampede an IdP's metadata endpoint. Every refusal is logged (the source and
a reason code, no document content) and sent as :data:`refused`, which
saml_jit turns into an event (this XML layer writes no rows).

The good copies are handed to pysaml2 as ``inline`` metadata by
:func:`saml_jit.saml.config.build_sp_config`; the cached SP configuration is
rebuilt when a copy falls due (:func:`seconds_until_due`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal
from lxml import etree
from saml2.sigver import SignatureError

from ..conf import app_settings
from .backend import get_backend

logger = logging.getLogger(__name__)

__all__ = [
    "BAD_SIGNATURE",
    "EXPIRED",
    "FETCH_FAILED",
    "INVALID",
    "Copy",
    "MetadataRefused",
    "Source",
    "Store",
    "check",
    "current",
    "refresh",
    "refused",
    "seconds_until_due",
    "sources",
]

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
ROOT_TAGS = {f"{{{MD}}}EntityDescriptor": "EntityDescriptor", f"{{{MD}}}EntitiesDescriptor": "EntitiesDescriptor"}

#: Reason codes of the refusal events (kind ``rejected``, source ``system``).
FETCH_FAILED = "metadata_fetch_failed"
BAD_SIGNATURE = "metadata_bad_signature"
EXPIRED = "metadata_expired"
INVALID = "metadata_invalid"

#: Sent for every refused fetch: ``source`` (:class:`Source`), ``code``, ``detail``, ``entity_ids``.
refused = Signal()

_now = time.time  # wall clock (validUntil is one); replaced by tests
_POLL = 0.2  # seconds between two looks at another node's fetch
_sleep = time.sleep  # replaced by tests


class MetadataRefused(Exception):
    """A fetched document that must not be used; ``code`` is one of the reason codes above."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Source:
    """One configured metadata location: an ``http(s)`` URL or a file, and the certificate that signs it."""

    location: str
    cert: str | None = None

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("https://", "http://"))

    @property
    def label(self) -> str:
        """The location for logs and events: an URL without its query or credentials (they may hold tokens)."""
        if not self.is_url:
            return self.location
        parts = urlsplit(self.location)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
        return urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, "", ""))

    @property
    def key(self) -> str:
        """A short, filesystem- and cache-safe name for the location."""
        return hashlib.sha256(self.location.encode("utf-8")).hexdigest()[:24]


def _source(item: Any) -> Source:
    if isinstance(item, (str, os.PathLike)):
        return Source(os.fspath(item))
    if isinstance(item, dict):
        location = item.get("url") or item.get("file")
        if isinstance(location, (str, os.PathLike)) and location:
            cert = item.get("cert")
            return Source(os.fspath(location), os.fspath(cert) if cert else None)
    raise ImproperlyConfigured(
        'Each SAML_JIT["METADATA"] entry is a URL, a file path, or {"url"|"file": ..., "cert": ...}'
    )


def sources() -> list[Source]:
    """The configured sources, in order (``ImproperlyConfigured`` for a malformed entry)."""
    return [_source(item) for item in app_settings.METADATA]


# --------------------------------------------------------------------------
# A checked copy


@dataclass(frozen=True)
class Copy:
    """A document that passed :func:`check`, with what decides when it must be fetched again."""

    xml: bytes
    fetched_at: float
    valid_until: float | None = None
    cache_duration: float | None = None
    entity_ids: tuple[str, ...] = ()

    def expired(self, now: float) -> bool:
        return self.valid_until is not None and now >= self.valid_until

    def due_at(self, interval: float) -> float:
        """When to fetch again: the schedule, or sooner per ``cacheDuration``; never after ``validUntil``."""
        due = self.fetched_at + min(interval, self.cache_duration or interval)
        return min(due, self.valid_until) if self.valid_until is not None else due


_DURATION = re.compile(
    r"^P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: str) -> float:
    """An ``xs:duration`` (``PT6H``, ``P1D``) in seconds; months and years approximated (30, 365 days)."""
    match = _DURATION.match(value.strip())
    if match is None or value.strip() in ("P", "PT") or value.strip().endswith("T"):
        raise MetadataRefused(INVALID, f"cacheDuration {value[:40]!r} is not an xs:duration")
    return sum(float(amount) * _SECONDS[unit] for unit, amount in match.groupdict().items() if amount)


def parse_instant(value: str) -> float:
    """An ``xs:dateTime`` (``validUntil``) as a POSIX timestamp; no zone means UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MetadataRefused(INVALID, f"validUntil {value[:40]!r} is not an xs:dateTime") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def parse_document(xml: bytes) -> Any:
    """The root of a metadata document, parsed safely (no DTD, no network); MetadataRefused otherwise."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        raise MetadataRefused(INVALID, "the document is not well-formed XML") from None
    if root.getroottree().docinfo.doctype:
        raise MetadataRefused(INVALID, "the document has a document type declaration")
    if root.tag not in ROOT_TAGS:
        raise MetadataRefused(INVALID, "the document is not SAML metadata (EntityDescriptor or EntitiesDescriptor)")
    return root


def _entity_ids(root: Any) -> tuple[str, ...]:
    if root.tag == f"{{{MD}}}EntityDescriptor":
        return (root.get("entityID") or "",)
    return tuple(element.get("entityID") or "" for element in root.iter(f"{{{MD}}}EntityDescriptor"))


def verify_signature(xml: bytes, root: Any, cert_file: str) -> None:
    """The root element's own enveloped signature, by ``cert_file`` only (in-process libxmlsec1)."""
    node_id = root.get("ID")
    if not node_id:
        raise MetadataRefused(BAD_SIGNATURE, "a signer certificate is configured but the metadata has no ID to sign")
    node_name = f"{MD}:{ROOT_TAGS[root.tag]}"
    try:
        get_backend().validate_signature(xml, cert_file, "pem", node_name, node_id)
    except SignatureError as exc:
        raise MetadataRefused(BAD_SIGNATURE, f"the metadata signature does not verify: {exc}") from None


def check(xml: bytes, source: Source, now: float | None = None) -> Copy:
    """Refuse what must not be used (:class:`MetadataRefused`); return the checked copy."""
    now = _now() if now is None else now
    root = parse_document(xml)
    valid_until = parse_instant(root.get("validUntil")) if root.get("validUntil") else None
    if valid_until is not None and now >= valid_until:
        raise MetadataRefused(EXPIRED, "the metadata's validUntil has passed")
    cache_duration = parse_duration(root.get("cacheDuration")) if root.get("cacheDuration") else None
    if source.cert:
        verify_signature(xml, root, source.cert)
    return Copy(xml, now, valid_until, cache_duration, _entity_ids(root))


# --------------------------------------------------------------------------
# Reading a source


def _read_url(url: str, timeout: float, max_size: int) -> bytes:
    try:
        with requests.get(url, timeout=timeout, stream=True, headers={"Accept": "application/samlmetadata+xml"}) as r:
            if r.status_code != 200:
                raise MetadataRefused(FETCH_FAILED, f"HTTP {r.status_code}")
            body = r.raw.read(max_size + 1, decode_content=True)
    except requests.RequestException as exc:
        raise MetadataRefused(FETCH_FAILED, type(exc).__name__) from None
    if len(body) > max_size:
        raise MetadataRefused(FETCH_FAILED, f"the document exceeds METADATA_MAX_SIZE ({max_size} bytes)")
    return bytes(body)


def _read_file(path: str, max_size: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            body = handle.read(max_size + 1)
    except OSError as exc:
        raise MetadataRefused(FETCH_FAILED, f"{type(exc).__name__}: {exc.strerror}") from None
    if len(body) > max_size:
        raise MetadataRefused(FETCH_FAILED, f"the file exceeds METADATA_MAX_SIZE ({max_size} bytes)")
    return body


def read(source: Source) -> bytes:
    """The document at ``source``, unchecked (:class:`MetadataRefused` ``metadata_fetch_failed``)."""
    max_size = app_settings.METADATA_MAX_SIZE
    if source.is_url:
        return _read_url(source.location, app_settings.METADATA_TIMEOUT, max_size)
    return _read_file(source.location, max_size)


# --------------------------------------------------------------------------
# The last good copies


class Store:
    """The last good copy of each source: the shared cache first, then this node's file."""

    def __init__(self, cache_alias: str | None = None, directory: str | None = None) -> None:
        self.cache = caches[cache_alias or app_settings.METADATA_CACHE]
        folder = directory if directory is not None else app_settings.METADATA_DIR
        self.directory = Path(folder) if folder else None

    def get(self, source: Source) -> Copy | None:
        stored = self.cache.get(self._key(source, "copy"))
        if stored is not None:
            return Copy(**{**stored, "entity_ids": tuple(stored["entity_ids"])})
        found = self._read_file(source)
        if found is not None:
            self.cache.set(self._key(source, "copy"), asdict(found), None)
        return found

    def put(self, source: Source, copy: Copy) -> None:
        self.cache.set(self._key(source, "copy"), asdict(copy), None)
        self._write_file(source, copy)

    def lock(self, source: Source, seconds: float) -> bool:
        """Take the fetch lock of ``source`` (every node, every process); False if another holds it."""
        return bool(self.cache.add(self._key(source, "lock"), 1, max(1, math.ceil(seconds))))

    def unlock(self, source: Source) -> None:
        self.cache.delete(self._key(source, "lock"))

    def back_off(self, source: Source, now: float, seconds: float) -> None:
        """Nobody fetches ``source`` before ``now + seconds`` (after a failure)."""
        self.cache.set(self._key(source, "retry"), now + seconds, max(1, math.ceil(seconds)))

    def backing_off(self, source: Source, now: float) -> bool:
        until = self.cache.get(self._key(source, "retry"))
        return until is not None and now < until

    def forget(self, source: Source) -> None:
        """Drop every trace of ``source`` (tests, or a source removed from the settings)."""
        self.cache.delete_many([self._key(source, part) for part in ("copy", "lock", "retry")])
        path = self._path(source)
        if path is not None:
            path.unlink(missing_ok=True)

    @staticmethod
    def _key(source: Source, part: str) -> str:
        return f"saml_jit:metadata:{source.key}:{part}"

    def _path(self, source: Source) -> Path | None:
        return self.directory / f"{source.key}.json" if self.directory is not None else None

    def _read_file(self, source: Source) -> Copy | None:
        path = self._path(source)
        if path is None or not path.exists():
            return None
        try:
            stored = json.loads(path.read_text())
            xml = base64.b64decode(stored.pop("xml"))
            return Copy(xml, **{**stored, "entity_ids": tuple(stored["entity_ids"])})
        except (OSError, ValueError, TypeError, KeyError):
            logger.warning("saml_jit ignores the unreadable metadata copy %s", path)
            return None

    def _write_file(self, source: Source, copy: Copy) -> None:
        # One file (the document and its times together): a reader never pairs one copy's times with another's XML.
        path = self._path(source)
        if path is not None:
            stored = {**asdict(copy), "xml": base64.b64encode(copy.xml).decode("ascii")}
            _atomic_write(path, json.dumps(stored).encode("utf-8"))


def _atomic_write(path: Path, data: bytes) -> None:
    # Readers (other processes of this node) see the old file or the new one, never half of one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


# --------------------------------------------------------------------------
# Refreshing


def report(source: Source, exc: MetadataRefused, entity_ids: Iterable[str] = ()) -> None:
    """Log a refusal (location and reason code only) and send :data:`refused`."""
    logger.warning("saml_jit refused metadata from %s: %s (%s)", source.label, exc.code, exc.detail)
    for receiver, result in refused.send_robust(
        sender=Source, source=source, code=exc.code, detail=exc.detail, entity_ids=tuple(entity_ids)
    ):
        if isinstance(result, Exception):
            logger.error("saml_jit metadata receiver %r failed", receiver, exc_info=result)


def refresh(source: Source, store: Store | None = None, *, now: float | None = None) -> Copy:
    """Read and check ``source`` now; store and return the good copy, or report and raise the refusal."""
    store = store or Store()
    now = _now() if now is None else now
    previous = store.get(source)
    try:
        copy = check(read(source), source, now)
    except MetadataRefused as exc:
        report(source, exc, previous.entity_ids if previous is not None else ())
        raise
    store.put(source, copy)
    logger.info("saml_jit refreshed metadata from %s (%d entities)", source.label, len(copy.entity_ids))
    return copy


def _wait_for_another_fetch(source: Source, store: Store) -> Copy | None:
    """No copy at all and another node is fetching (a cold start): wait for its result, up to the timeout."""
    deadline = time.monotonic() + app_settings.METADATA_TIMEOUT
    while time.monotonic() < deadline:
        _sleep(_POLL)
        found = store.get(source)
        if found is not None:
            return found
    return None


def _refresh_once(source: Source, store: Store, copy: Copy | None, now: float) -> Copy | None:
    """:func:`refresh` by one node at a time, and not again for ``METADATA_RETRY`` after a failure."""
    if store.backing_off(source, now):
        return copy
    if not store.lock(source, 2 * app_settings.METADATA_TIMEOUT + 5):
        return copy if copy is not None else _wait_for_another_fetch(source, store)
    try:
        return refresh(source, store, now=now)
    except MetadataRefused:
        store.back_off(source, now, app_settings.METADATA_RETRY)
        return copy
    finally:
        store.unlock(source)


def current(source: Source, store: Store | None = None, *, now: float | None = None) -> Copy | None:
    """The copy to serve for ``source``: refreshed when due, the last good one otherwise, None once expired."""
    store = store or Store()
    now = _now() if now is None else now
    copy = store.get(source)
    if copy is None or now >= copy.due_at(app_settings.METADATA_REFRESH):
        copy = _refresh_once(source, store, copy, now)
    if copy is not None and copy.expired(now):
        if not store.backing_off(source, now):  # reported once per retry interval, not per request
            store.back_off(source, now, app_settings.METADATA_RETRY)
            report(source, MetadataRefused(EXPIRED, "the last good copy has expired"), copy.entity_ids)
        return None
    return copy


def seconds_until_due(store: Store | None = None, *, now: float | None = None) -> float | None:
    """Seconds until some source must be fetched again (None without sources); the retry once one is due."""
    found = sources()
    if not found:
        return None
    store = store or Store()
    now = _now() if now is None else now
    interval = app_settings.METADATA_REFRESH
    due = [copy.due_at(interval) for copy in map(store.get, found) if copy is not None]
    soonest = min(due) - now if len(due) == len(found) else 0.0
    # Due already (another node is fetching, or fetching failed): look again after the retry interval.
    return soonest if soonest > 0 else app_settings.METADATA_RETRY


def inline_documents(store: Store | None = None) -> list[str]:
    """The good copies to serve now, as pysaml2 ``inline`` metadata."""
    store = store or Store()
    copies = (current(source, store) for source in sources())
    return [copy.xml.decode("utf-8") for copy in copies if copy is not None]
