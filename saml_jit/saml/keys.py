"""Parsed keys, kept: what makes in-process crypto cheap per request.

Loading a key costs more than using it: libxmlsec1 parses PEM on every
``Key.from_file``, a ``KeysManager`` sets up an X.509 store (~15 ms), and
pysaml2 fully checks the SP's RSA key each time it builds a security context
(~45 ms for RSA-2048). The caches here are keyed by what the key was read
from, so a rotated file is picked up at once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from saml2.sigver import RSACrypto, import_rsa_key_from_file

from ._libxmlsec import xmlsec

__all__ = ["KeyCache", "ManagerCache", "rsa_crypto"]


class KeyCache:
    """Parsed xmlsec keys, keyed by the bytes they were read from (bounded)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[int, bool, bytes], xmlsec.Key] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, data: bytes, key_format: int, *, verify_only: bool = False) -> xmlsec.Key:
        """The key in ``data``; ``verify_only``: a certificate's public key alone (see :func:`_verification_key`)."""
        cache_key = (key_format, verify_only, hashlib.sha256(data).digest())
        with self._lock:
            key = self._keys.get(cache_key)
            if key is not None:
                self._keys.move_to_end(cache_key)
                return key
        key = xmlsec.Key.from_memory(data, key_format)
        if verify_only:
            key = _verification_key(key, data, key_format)
        with self._lock:
            self._keys[cache_key] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key

    def from_file(self, path: str | os.PathLike[str], key_format: int, *, verify_only: bool = False) -> xmlsec.Key:
        # Read every time (a few hundred bytes): a rotated file is picked up
        # at once, and pysaml2's temporary files (new names every call) are
        # still parsed only once.
        with open(path, "rb") as handle:
            return self.get(handle.read(), key_format, verify_only=verify_only)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


_CERTIFICATE_ENCODINGS = {
    xmlsec.constants.KeyDataFormatCertPem: x509.load_pem_x509_certificate,
    xmlsec.constants.KeyDataFormatCertDer: x509.load_der_x509_certificate,
}


def _verification_key(key: xmlsec.Key, data: bytes, key_format: int) -> xmlsec.Key:
    """For checking signatures, a certificate's public key without the certificate.

    A signature context copies the key it is given, certificate and all
    (~50 µs for an X.509 key, under 1 µs for a bare RSA key), once per
    signature checked; nothing in verification reads the certificate (no keys
    manager, no chain). libxmlsec1 has parsed ``data`` first (``key``), so what
    it refuses is still refused; anything ``cryptography`` cannot re-read
    keeps that key.
    """
    load = _CERTIFICATE_ENCODINGS.get(key_format)
    if load is None:
        return key
    try:
        public = load(data).public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return xmlsec.Key.from_memory(public, xmlsec.constants.KeyDataFormatPem)
    except (ValueError, TypeError, xmlsec.Error):
        return key


class ManagerCache:
    """One ``KeysManager`` per key and thread.

    Creating a KeysManager costs ~15 ms (libxmlsec1 sets up an X.509 store),
    more than the decryption itself; a manager is not shared between threads.
    """

    #: Managers kept per thread before starting afresh (keys rotated many times).
    size = 64

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, key: xmlsec.Key) -> xmlsec.KeysManager:
        managers: dict[int, tuple[xmlsec.Key, xmlsec.KeysManager]] = self._local.__dict__.setdefault("by_key", {})
        entry = managers.get(id(key))
        if entry is None or entry[0] is not key:
            if len(managers) >= self.size:
                managers.clear()
            manager = xmlsec.KeysManager()
            manager.add_key(key)
            entry = managers[id(key)] = (key, manager)
        return entry[1]


_rsa_cache: dict[tuple[str, int, int], RSACrypto] = {}
_rsa_lock = threading.Lock()


def rsa_crypto(key_file: str | None) -> RSACrypto | None:
    """pysaml2's ``RSACrypto`` for ``key_file`` (HTTP-Redirect signatures), loaded once per file version.

    pysaml2 loads (and fully checks) the SP's RSA key each time it builds a
    security context: about 45 ms for RSA-2048, per request.
    """
    if not key_file:
        return None
    stat = os.stat(key_file)
    cache_key = (os.fspath(key_file), stat.st_mtime_ns, stat.st_size)
    with _rsa_lock:
        found = _rsa_cache.get(cache_key)
    if found is None:
        found = RSACrypto(import_rsa_key_from_file(key_file))
        with _rsa_lock:
            for stale in [k for k in _rsa_cache if k[0] == cache_key[0]]:
                del _rsa_cache[stale]
            _rsa_cache[cache_key] = found
    return found
