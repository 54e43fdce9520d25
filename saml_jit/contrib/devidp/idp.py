"""The development IdP's identity: its URLs, its key, and the SP it trusts.

:func:`metadata` runs while settings load (the SP must trust the IdP before
Django is configured), so it touches neither ``django.conf`` nor the
database. It records where the IdP lives for :func:`get_idp`, which the
views call: the IdP then trusts the SP this site runs, from the SP's own
(cached) configuration.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from saml2.metadata import entity_descriptor

from saml_jit.testing.idp import TestIdP, generate_keypair

KEY_NAME = "devidp"
DISPLAY_NAME = "saml_jit development IdP"


class NotTrusted(LookupError):
    """The SP's configuration never called :func:`metadata`: it does not trust this IdP."""


@dataclass(frozen=True)
class Site:
    """Where the IdP is mounted (``base`` ends with ``/``) and where its key lives."""

    base: str
    keys_dir: Path

    @property
    def entity_id(self) -> str:
        return f"{self.base}metadata/"


_lock = threading.Lock()
_site: Site | None = None
_temp_keys: Path | None = None
#: (the SP configuration it trusts, the IdP): held so that ``is`` compares the very same object.
_cached: tuple[object, TestIdP] | None = None


def _process_keys_dir() -> Path:
    """A private (0700) temporary folder for this process's IdP key."""
    global _temp_keys
    with _lock:
        if _temp_keys is None:
            _temp_keys = Path(tempfile.mkdtemp(prefix="saml_jit-devidp-"))
            atexit.register(shutil.rmtree, _temp_keys, ignore_errors=True)  # the key dies with the process
        return _temp_keys


def build(site: Site, sp_metadata: list[str] | None = None) -> TestIdP:
    key_file, cert_file = generate_keypair(site.keys_dir, KEY_NAME, DISPLAY_NAME)
    return TestIdP(site.entity_id, key_file, cert_file, site.base, sp_metadata, name=DISPLAY_NAME)


def metadata(base_url: str, *, path: str = "/devidp/", keys_dir: str | os.PathLike[str] | None = None) -> str:
    """The dev IdP's metadata XML, for ``saml_config(idp_metadata_xml=...)``; call it in settings.

    ``base_url`` is the site's (``"http://localhost:8000"``), ``path`` where
    ``saml_jit.contrib.devidp.urls`` is included. With ``keys_dir`` the IdP's
    key is kept there (git-ignored) across restarts and processes; without,
    it lives in a temporary folder of this process.
    """
    global _site, _cached
    base = base_url.rstrip("/") + "/" + path.strip("/") + "/"
    site = Site(base=base, keys_dir=Path(keys_dir) if keys_dir is not None else _process_keys_dir())
    with _lock:
        _site = site
        _cached = None
    return build(site).metadata_xml()


def registered_site() -> Site | None:
    """The site :func:`metadata` was called for in this process, if any."""
    return _site


def get_idp() -> TestIdP:
    """The dev IdP, trusting this site's SP (rebuilt when the SP's configuration is)."""
    global _cached
    from saml_jit.saml.config import get_sp_config

    site = registered_site()
    if site is None:
        raise NotTrusted("saml_jit.contrib.devidp.metadata() was not called in settings")
    sp_config = get_sp_config()
    cached = _cached
    if cached is not None and cached[0] is sp_config:
        return cached[1]
    idp = build(site, [str(entity_descriptor(sp_config))])
    with _lock:
        _cached = (sp_config, idp)  # one SP configuration at a time: the old one is gone
    return idp


def sp_trusts(idp: TestIdP) -> bool:
    """Whether the SP's configuration has this IdP's metadata (the same entity ID)."""
    from saml_jit.saml.config import get_sp_config

    try:
        return idp.entity_id in get_sp_config().metadata.identity_providers()  # type: ignore[union-attr]
    except Exception:  # no metadata at all, or it does not load: not trusted either way
        return False
