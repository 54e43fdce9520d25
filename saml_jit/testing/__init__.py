"""Test helpers for saml_jit: a small, real SAML IdP built on pysaml2.

Used by the test-suite and by the demo project. Nothing here is imported by
the app at run time, so production installs never execute it.
"""

from __future__ import annotations

from saml_jit.testing.encryption import Encryption
from saml_jit.testing.idp import (
    ATTRIBUTE_URIS,
    FRIENDLY_NAMES,
    AuthnRequestInfo,
    ResponseSpec,
    TestIdP,
    generate_keypair,
    sp_saml_config,
)

__all__ = [
    "ATTRIBUTE_URIS",
    "FRIENDLY_NAMES",
    "AuthnRequestInfo",
    "Encryption",
    "ResponseSpec",
    "TestIdP",
    "generate_keypair",
    "sp_saml_config",
]
