"""Deprecated: the SP configuration builder moved to :func:`saml_jit.config.saml_config`."""

from __future__ import annotations

import warnings
from typing import Any

from saml_jit.config import saml_config

__all__ = ["sp_saml_config"]


def sp_saml_config(*, entity_id: str, base_url: str, **options: Any) -> dict:
    """Deprecated alias of :func:`saml_jit.config.saml_config` (same arguments)."""
    warnings.warn(
        "saml_jit.testing.sp_saml_config is deprecated; use saml_jit.config.saml_config (same arguments).",
        DeprecationWarning,
        stacklevel=2,
    )
    return saml_config(entity_id=entity_id, base_url=base_url, **options)
