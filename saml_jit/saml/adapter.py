"""Teaching pysaml2 the in-process backend.

pysaml2 builds the security context of every ``Entity`` (``Saml2Client``,
``Server``) and metadata store through its module-level
``security_context(conf)``, which knows two ``crypto_backend`` values,
``"xmlsec1"`` and ``"XMLSecurity"``. Two ways to reach the in-process backend:

* :func:`enable` teaches it one more value, :data:`BACKEND_NAME`: every
  pysaml2 object built from a configuration naming it (the ACS client,
  djangosaml2's login, logout and metadata views, the metadata store) then
  uses :mod:`saml_jit.saml.security`, and neither ``xmlsec1 --version`` nor
  any other subprocess is started, nor is the ``xmlsec1`` binary looked for.
  Any other ``crypto_backend`` value goes to pysaml2 untouched. This is a
  patch of pysaml2's module globals, so it is in effect only while the
  in-process backend is selected (``SAML_JIT["CRYPTO_BACKEND"] == "xmlsec"``,
  see :func:`sync_with_settings`), never merely because a module was imported.
* :func:`install` is the explicit, per-object alternative: it swaps the
  crypto backend of one pysaml2 ``Entity`` that was built from any
  configuration, with no global change.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from saml2.xml.schema import validate as saml2_validate_doc_with_schema

from ..conf import app_settings
from .backend import get_backend
from .keys import rsa_crypto
from .security import _validate_doc_with_schema, security_context

__all__ = ["BACKEND_NAME", "disable", "enable", "install", "is_enabled", "sync_with_settings"]

#: The ``crypto_backend`` value of a pysaml2 configuration that selects this backend.
BACKEND_NAME = "saml_jit.xmlsec"

# Modules that bound ``security_context`` at import time.
_PATCHED_MODULES = ("saml2.sigver", "saml2.entity", "saml2.mdstore", "saml2.response", "saml2.metadata")
_enable_lock = threading.Lock()
_original_security_context: Any = None


def install(entity: Any) -> Any:
    """Make one pysaml2 ``Entity`` (``Saml2Client``, ``Server``…) use the in-process backend.

    Works whatever ``crypto_backend`` its configuration names; returns the entity.
    """
    sec = entity.sec
    sec.crypto = get_backend()
    if sec.sec_backend is None:
        sec.sec_backend = rsa_crypto(entity.config.getattr("key_file", ""))
    return entity


def _dispatching_security_context(conf: Any) -> Any:
    if conf and getattr(conf, "crypto_backend", None) == BACKEND_NAME:
        return security_context(conf)
    return _original_security_context(conf)


def enable() -> None:
    """Let pysaml2 build this backend for configurations with ``crypto_backend = BACKEND_NAME``.

    Idempotent and thread-safe. Configurations naming any other backend are
    handed to pysaml2's own ``security_context()`` unchanged; without
    :func:`enable`, pysaml2 refuses :data:`BACKEND_NAME` ("Unknown
    crypto_backend"), so a missing call fails closed.
    """
    global _original_security_context
    with _enable_lock:
        import saml2.sigver

        if _original_security_context is None:
            _original_security_context = saml2.sigver.security_context
        # Only ever skips inside saml_jit's SecurityContext (see there).
        saml2.sigver.validate_doc_with_schema = _validate_doc_with_schema
        for name in _PATCHED_MODULES:
            module: Any = importlib.import_module(name)  # Any: security_context is set on it below
            if getattr(module, "security_context", None) is _original_security_context:
                module.security_context = _dispatching_security_context


def disable() -> None:
    """Undo :func:`enable`: pysaml2 as it ships (for ``"xmlsec1"``, and for tests)."""
    with _enable_lock:
        if _original_security_context is None:
            return
        import saml2.sigver

        saml2.sigver.validate_doc_with_schema = saml2_validate_doc_with_schema
        for name in _PATCHED_MODULES:
            module: Any = importlib.import_module(name)
            if getattr(module, "security_context", None) is _dispatching_security_context:
                module.security_context = _original_security_context


def is_enabled() -> bool:
    import saml2.entity

    return saml2.entity.security_context is _dispatching_security_context


def sync_with_settings() -> None:
    """Patch pysaml2 while ``CRYPTO_BACKEND`` is ``"xmlsec"``, restore it for ``"xmlsec1"``.

    Run when the app starts and whenever ``SAML_JIT`` changes. It lets a
    ``SAML_CONFIG`` name ``"crypto_backend": "saml_jit.xmlsec"`` directly. Any
    other value changes nothing here: building a configuration refuses it
    (:func:`saml_jit.saml.config.crypto_backend`).
    """
    backend = app_settings.CRYPTO_BACKEND
    if backend == "xmlsec":
        enable()
    elif backend == "xmlsec1":
        disable()
