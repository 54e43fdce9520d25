"""The pysaml2 SP configuration, built once per process and reused.

Stock djangosaml2 rebuilds the pysaml2 ``SPConfig`` on every request: it
parses all IdP metadata, reads the certificates and loads (and fully checks)
the SP's private key, about 100 ms a request. Here it is built once, shared
by every request and thread, and rebuilt when it is refreshed.

Use
---
Point djangosaml2 at the cached loader, so its own login, logout and
metadata views share the cache, and call :func:`get_sp_config` anywhere
else (views, management commands, checks)::

    SAML_CONFIG_LOADER = "saml_jit.saml.config.config_loader"

(``"saml_jit.spconfig.config_loader"``, the path of earlier releases, still works.)

Settings (in ``SAML_JIT``)
--------------------------
``CONFIG_LOADER``
    The loader whose result is cached: a dotted path or a callable taking the
    request, like djangosaml2's ``SAML_CONFIG_LOADER``. Default: the
    ``SAML_CONFIG_LOADER`` setting if it names another loader than this
    module's, else djangosaml2's ``config_settings_loader`` (``SAML_CONFIG``).
    Entries are cached per loader path.
``CONFIG_MAX_AGE``
    Seconds after which the configuration (and so the metadata) is rebuilt;
    ``None`` or ``0``: only on :func:`refresh`. Default 3600. The rebuild
    happens in the one request that finds the entry stale; concurrent
    requests keep using the old configuration meanwhile, and if the rebuild
    fails (a metadata URL is down) the old one stays in use and the rebuild
    is retried after ``CONFIG_RETRY`` seconds (default 60).
``CONFIG_CACHE``
    ``False`` turns caching off (a fresh configuration per request, built by
    the loader *with* the request, exactly like djangosaml2).
``CONFIG_CACHE_KEY``
    For loaders that depend on the request (one configuration per host or
    tenant): a dotted path or callable ``request -> hashable`` naming what
    the loader depends on; one configuration is cached per value, and the
    loader receives the request. Without it the cached configuration is
    built with ``request=None``, so a loader that silently depends on the
    request cannot hand one tenant's configuration to another: give it a
    ``CONFIG_CACHE_KEY``, or set ``CONFIG_CACHE`` to ``False``.
``CRYPTO_BACKEND``
    ``"xmlsec"`` (default: in-process, :mod:`saml_jit.saml.backend`) or
    ``"xmlsec1"`` (pysaml2's subprocess path, configuration left as it is).
    pysaml2 is patched to know the in-process backend only while ``"xmlsec"``
    is selected (:mod:`saml_jit.saml.adapter`): changing ``SAML_JIT``
    re-evaluates it.

Refreshing
----------
:func:`refresh` drops cached configurations (all of them, or one loader's);
the next request rebuilds. It is also a signal receiver: connect it to any
signal (e.g. one sent when new metadata was downloaded). Changing
``SAML_CONFIG``, ``SAML_CONFIG_LOADER`` or ``SAML_JIT`` with
``override_settings`` refreshes automatically. The cache is per process:
each worker rebuilds on its own schedule (use ``CONFIG_MAX_AGE`` or send the
refresh signal in every process).

Shared state
------------
A cached configuration is shared by concurrent requests, so nothing may
store per-request state on it. pysaml2's ``Saml2Client`` reads it only (the
client's own attributes, such as ``allow_unsolicited``, live on the client),
with two exceptions that this module refuses to cache: virtual organisations
(``Entity`` writes itself into ``config.vorg``) and ``key_file``/``cert_file``
given as URLs (``Entity`` rewrites them to temporary files). Code in saml_jit
and in djangosaml2 must not write to the configuration either: set things on
the client, not on ``client.config``.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.utils.module_loading import import_string
from saml2.config import SPConfig

from ..conf import app_settings
from . import adapter
from . import metadata as managed_metadata
from .security import security_context

logger = logging.getLogger(__name__)

__all__ = [
    "CachedSPConfigMixin",
    "build_sp_config",
    "config_loader",
    "get_sp_config",
    "refresh",
]

THIS_LOADER = "saml_jit.saml.config.config_loader"
#: Where :func:`config_loader` lived before (still importable from there).
FORMER_LOADER = "saml_jit.spconfig.config_loader"
DJANGOSAML2_LOADER = "djangosaml2.conf.config_settings_loader"

CRYPTO_BACKENDS = ("xmlsec", "xmlsec1")


def crypto_backend() -> str:
    value = app_settings.CRYPTO_BACKEND
    if value not in CRYPTO_BACKENDS:
        raise ImproperlyConfigured(f"SAML_JIT['CRYPTO_BACKEND'] must be one of {CRYPTO_BACKENDS}, not {value!r}")
    return value


# --------------------------------------------------------------------------
# Building


def build_sp_config(config: dict[str, Any], backend: str | None = None) -> SPConfig:
    """A pysaml2 ``SPConfig`` from a djangosaml2-style dict, with saml_jit's crypto backend.

    For custom loaders: ``return build_sp_config(my_dict)`` instead of
    ``SPConfig().load(my_dict)``, so the configuration (and its metadata
    store) never needs the ``xmlsec1`` program. ``config`` is not modified.
    """
    backend = backend or crypto_backend()
    config = with_managed_metadata(copy.deepcopy(config))
    if backend == "xmlsec":
        adapter.enable()
        config["crypto_backend"] = adapter.BACKEND_NAME
        # Only pysaml2's metadata writer still reads it (to list the xmlsec1
        # program's algorithms, by starting it): not needed, nor true, here.
        config["xmlsec_binary"] = None
    conf = SPConfig()
    conf.load(config)
    return conf


def with_managed_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the good copies of ``SAML_JIT["METADATA"]`` added as ``inline`` metadata."""
    documents = managed_metadata.inline_documents()
    if documents:
        sources = dict(config.get("metadata") or {})
        sources["inline"] = [*(sources.get("inline") or []), *documents]
        config["metadata"] = sources
    return config


def _settings_loader(request: HttpRequest | None = None) -> SPConfig:
    """djangosaml2's ``config_settings_loader``, with the crypto backend chosen before loading."""
    return build_sp_config(settings.SAML_CONFIG)


def _adopt(conf: SPConfig, backend: str) -> SPConfig:
    """Switch a configuration some other loader built to the selected backend."""
    if backend == "xmlsec" and conf.crypto_backend != adapter.BACKEND_NAME:
        adapter.enable()
        conf.crypto_backend = adapter.BACKEND_NAME
        conf.xmlsec_binary = None
        metadata = getattr(conf, "metadata", None)
        if metadata is not None and hasattr(metadata, "security"):
            metadata.security = security_context(conf)
    return conf


def _loader_path() -> str | Callable[..., SPConfig]:
    loader = app_settings.CONFIG_LOADER
    if loader:
        return loader
    configured = getattr(settings, "SAML_CONFIG_LOADER", None)
    if configured and configured not in (THIS_LOADER, FORMER_LOADER, config_loader):
        return configured
    return DJANGOSAML2_LOADER


def _name(loader: str | Callable[..., Any]) -> str:
    if isinstance(loader, str):
        return loader
    return f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', repr(loader))}"


def _resolve(loader: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(loader):
        return loader
    if loader == DJANGOSAML2_LOADER:
        return _settings_loader
    try:
        found = import_string(loader)
    except ImportError as exc:
        raise ImproperlyConfigured(f"Error importing SAML config loader {loader}: {exc}") from exc
    if not callable(found):
        raise ImproperlyConfigured(f"SAML config loader {loader} is not callable")
    if found is config_loader:
        raise ImproperlyConfigured(f"{THIS_LOADER} cannot wrap itself; set SAML_JIT['CONFIG_LOADER']")
    return found


def _build(loader: str | Callable[..., Any], request: HttpRequest | None) -> SPConfig:
    backend = crypto_backend()
    started = time.perf_counter()
    conf = _adopt(_resolve(loader)(request), backend)
    logger.debug(
        "saml_jit built the SP configuration (%s) in %.1f ms", _name(loader), 1000 * (time.perf_counter() - started)
    )
    return conf


def _cacheable(conf: SPConfig) -> bool:
    if conf.vorg:
        return False
    return not any(str(getattr(conf, item, None) or "").startswith("http") for item in ("key_file", "cert_file"))


# --------------------------------------------------------------------------
# The cache


@dataclass(frozen=True)
class _Entry:
    config: SPConfig
    built_at: float  # _clock()
    #: When managed metadata falls due (_clock()); None: only CONFIG_MAX_AGE counts.
    refresh_at: float | None = None


_clock = time.monotonic  # replaced by tests
_cache: dict[Hashable, _Entry] = {}
_uncacheable: set[Hashable] = set()
_build_lock = threading.Lock()  # one build at a time
_state_lock = threading.Lock()  # guards _cache/_generation updates
_generation = 0


def _max_age() -> float | None:
    return app_settings.CONFIG_MAX_AGE


def _fresh(entry: _Entry | None, now: float) -> bool:
    if entry is None:
        return False
    if entry.refresh_at is not None and now >= entry.refresh_at:
        return False
    max_age = _max_age()
    return max_age is None or now - entry.built_at < max_age


def _cache_key(loader: str | Callable[..., Any], request: HttpRequest | None) -> tuple[Hashable, HttpRequest | None]:
    key_func = app_settings.CONFIG_CACHE_KEY
    if not key_func:
        return (_name(loader), crypto_backend(), None), None
    if isinstance(key_func, str):
        key_func = import_string(key_func)
    return (_name(loader), crypto_backend(), key_func(request)), request


def get_sp_config(request: HttpRequest | None = None) -> SPConfig:
    """The pysaml2 ``SPConfig``: cached, shared, never to be modified by the caller."""
    loader = _loader_path()
    if not app_settings.CONFIG_CACHE:
        return _build(loader, request)
    key, loader_request = _cache_key(loader, request)
    if key in _uncacheable:
        return _build(loader, loader_request)
    entry = _cache.get(key)
    if entry is not None and _fresh(entry, _clock()):
        return entry.config
    return _rebuild(key, loader, loader_request, entry)


def _rebuild(
    key: Hashable, loader: str | Callable[..., Any], request: HttpRequest | None, entry: _Entry | None
) -> SPConfig:
    """Build the configuration for ``key``, one build at a time."""
    if entry is not None:
        # Stale: one thread rebuilds, the others carry on with the old one.
        if not _build_lock.acquire(blocking=False):
            return entry.config
    else:
        _build_lock.acquire()
    try:
        current = _cache.get(key)
        if current is not None and current is not entry and _fresh(current, _clock()):
            return current.config  # built by another thread meanwhile
        return _build_and_store(key, loader, request, entry)
    finally:
        _build_lock.release()


def _build_and_store(
    key: Hashable, loader: str | Callable[..., Any], request: HttpRequest | None, entry: _Entry | None
) -> SPConfig:
    generation = _generation
    try:
        conf = _build(loader, request)
    except Exception:
        if entry is None:
            raise
        logger.exception("saml_jit could not rebuild the SP configuration; keeping the previous one")
        retry_at = _clock() - (_max_age() or 0.0) + app_settings.CONFIG_RETRY
        _store(key, _Entry(entry.config, retry_at), generation)
        return entry.config
    if not _cacheable(conf):
        logger.warning(
            "saml_jit does not cache the SP configuration of %s: it uses virtual organisations or "
            "key/cert URLs, which pysaml2 rewrites per client",
            _name(loader),
        )
        with _state_lock:
            _uncacheable.add(key)
        return conf
    due_in = managed_metadata.seconds_until_due()
    built_at = _clock()
    _store(key, _Entry(conf, built_at, None if due_in is None else built_at + due_in), generation)
    return conf


def _store(key: Hashable, entry: _Entry, generation: int) -> None:
    with _state_lock:
        if generation == _generation:  # not refreshed while building
            _cache[key] = entry


def config_loader(request: HttpRequest | None = None) -> SPConfig:
    """djangosaml2 ``SAML_CONFIG_LOADER``: ``"saml_jit.saml.config.config_loader"``."""
    return get_sp_config(request)


def refresh(sender: Any = None, loader: str | Callable[..., Any] | None = None, **kwargs: Any) -> None:
    """Drop cached configurations (every one, or ``loader``'s); the next request rebuilds.

    Usable as a signal receiver: ``some_signal.connect(saml_jit.saml.config.refresh)``.
    A build running meanwhile in another thread returns its result but does
    not cache it.
    """
    global _generation
    with _state_lock:
        _generation += 1
        if loader is None:
            _cache.clear()
            _uncacheable.clear()
        else:
            name = _name(loader)
            for key in [key for key in _cache if key[0] == name]:  # type: ignore[index]
                del _cache[key]
            _uncacheable.difference_update({key for key in _uncacheable if key[0] == name})  # type: ignore[index]


def cached_configs() -> list[SPConfig]:
    """The configurations currently cached (for diagnostics and tests)."""
    return [entry.config for entry in list(_cache.values())]


_WATCHED_SETTINGS = frozenset({"SAML_CONFIG", "SAML_CONFIG_LOADER", "SAML_JIT"})


def _on_setting_changed(sender: Any = None, setting: str = "", **kwargs: Any) -> None:
    if setting == "SAML_JIT":
        adapter.sync_with_settings()  # CRYPTO_BACKEND may have changed
    if setting in _WATCHED_SETTINGS:
        refresh()


setting_changed.connect(_on_setting_changed, dispatch_uid="saml_jit.saml.config.refresh")


class CachedSPConfigMixin:
    """For djangosaml2 views: ``get_sp_config`` from this cache, whatever ``SAML_CONFIG_LOADER`` says."""

    def get_sp_config(self, request: HttpRequest) -> SPConfig:
        return get_sp_config(request)
