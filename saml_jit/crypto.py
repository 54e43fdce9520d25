"""Moved to :mod:`saml_jit.saml`; this module only re-exports the public names.

* :class:`XmlSecBackend`, :func:`get_backend`: :mod:`saml_jit.saml.backend`
* :func:`rsa_crypto` (and the key caches): :mod:`saml_jit.saml.keys`
* :class:`SecurityContext`, :func:`security_context`: :mod:`saml_jit.saml.security`
* :data:`BACKEND_NAME`, :func:`enable`, :func:`disable`, :func:`is_enabled`,
  :func:`install`: :mod:`saml_jit.saml.adapter`

Importing this module patches nothing: pysaml2 knows the in-process backend
only while ``SAML_JIT["CRYPTO_BACKEND"]`` is ``"xmlsec"`` (or after
:func:`enable`).
"""

from __future__ import annotations

import warnings

from .saml.adapter import BACKEND_NAME, disable, enable, install, is_enabled
from .saml.backend import XmlSecBackend, get_backend
from .saml.keys import rsa_crypto
from .saml.security import SecurityContext, security_context

warnings.warn(
    "saml_jit.crypto moved to saml_jit.saml.adapter / saml_jit.saml.backend; this alias goes in saml_jit 0.2.",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "BACKEND_NAME",
    "SecurityContext",
    "XmlSecBackend",
    "disable",
    "enable",
    "get_backend",
    "install",
    "is_enabled",
    "rsa_crypto",
    "security_context",
]
