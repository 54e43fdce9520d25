"""Moved to :mod:`saml_jit.saml.config`; this module only re-exports it.

Settings written for earlier releases keep working::

    SAML_CONFIG_LOADER = "saml_jit.spconfig.config_loader"

New code (and new settings) should use ``saml_jit.saml.config``. Re-exports
are the same objects, so ``some_signal.connect(saml_jit.spconfig.refresh)``
still connects :func:`saml_jit.saml.config.refresh`.
"""

from __future__ import annotations

import warnings

from .saml.config import (
    CachedSPConfigMixin,
    build_sp_config,
    cached_configs,
    config_loader,
    crypto_backend,
    get_sp_config,
    refresh,
)

warnings.warn(
    "saml_jit.spconfig moved to saml_jit.saml.config; this alias goes in saml_jit 0.2.",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "CachedSPConfigMixin",
    "build_sp_config",
    "cached_configs",
    "config_loader",
    "crypto_backend",
    "get_sp_config",
    "refresh",
]
