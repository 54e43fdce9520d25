"""The test federation: two IdPs and one SP, with keys generated at run time.

Imported by ``tests/settings.py`` (to build ``SAML_CONFIG``) and by the tests
(to mint responses). Keys live in ``tests/.keys/`` (git-ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

from saml_jit.config import saml_config as build_saml_config
from saml_jit.testing.idp import FRIENDLY_NAMES, TestIdP, generate_keypair

KEYS = Path(os.environ.get("SAML_JIT_TEST_KEYS", Path(__file__).resolve().parent / ".keys"))

BASE_URL = "http://testserver"
SP_ENTITY_ID = f"{BASE_URL}/saml2/metadata/"
ACS_URL = f"{BASE_URL}/saml2/acs/"

IDP_A_ID = "https://idp-a.example.org/idp/metadata"
IDP_B_ID = "https://idp-b.example.net/idp/metadata"

SP_KEY, SP_CERT = generate_keypair(KEYS, "sp", "saml_jit test SP")
_IDP_A_KEY, _IDP_A_CERT = generate_keypair(KEYS, "idp-a", "saml_jit test IdP A")
_IDP_B_KEY, _IDP_B_CERT = generate_keypair(KEYS, "idp-b", "saml_jit test IdP B")
#: A key no SP trusts: responses signed with it must be rejected.
ROGUE_KEY, ROGUE_CERT = generate_keypair(KEYS, "rogue", "saml_jit rogue signer")

IDP_A = TestIdP(IDP_A_ID, _IDP_A_KEY, _IDP_A_CERT, "https://idp-a.example.org/idp")
IDP_B = TestIdP(IDP_B_ID, _IDP_B_KEY, _IDP_B_CERT, "https://idp-b.example.net/idp")


def saml_config() -> dict:
    return build_saml_config(
        entity_id=SP_ENTITY_ID,
        base_url=BASE_URL,
        idp_metadata_xml=[IDP_A.metadata_xml(), IDP_B.metadata_xml()],
        key_file=SP_KEY,
        cert_file=SP_CERT,
    )


__all__ = ["ACS_URL", "FRIENDLY_NAMES", "IDP_A", "IDP_B", "SP_ENTITY_ID", "saml_config"]
