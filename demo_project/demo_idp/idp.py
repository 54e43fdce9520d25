"""Building the demo IdP.

:func:`idp_metadata_xml` runs while settings load (the SP needs to trust the
IdP before Django is configured), so it must not touch ``django.conf``.
:func:`get_idp` is for views: it also trusts the SP this site runs.
"""

from __future__ import annotations

import functools
from pathlib import Path

from saml2.metadata import entity_descriptor

from saml_jit.saml.config import get_sp_config
from saml_jit.testing.idp import TestIdP, generate_keypair


def idp_entity_id(demo_base_url: str) -> str:
    return f"{demo_base_url.rstrip('/')}/idp/metadata/"


def build_idp(demo_base_url: str, keys_dir: Path, sp_metadata: list[str] | None = None) -> TestIdP:
    """The demo IdP, mounted at ``{demo_base_url}/idp/``; keys are created on first use."""
    key_file, cert_file = generate_keypair(keys_dir, "demo-idp", "saml_jit demo IdP")
    return TestIdP(
        entity_id=idp_entity_id(demo_base_url),
        key_file=key_file,
        cert_file=cert_file,
        base_url=f"{demo_base_url.rstrip('/')}/idp",
        sp_metadata=sp_metadata,
        name="saml_jit demo IdP",
    )


def idp_metadata_xml(demo_base_url: str, keys_dir: Path) -> str:
    return build_idp(demo_base_url, keys_dir).metadata_xml()


@functools.cache
def get_idp() -> TestIdP:
    """The demo IdP, trusting this site's SP (built once per process: it is configuration)."""
    from django.conf import settings

    # The SP's own (cached, in-process crypto) configuration: no xmlsec1 needed.
    sp_metadata = str(entity_descriptor(get_sp_config()))
    return build_idp(settings.DEMO_BASE_URL, settings.DEMO_KEYS_DIR, [sp_metadata])
