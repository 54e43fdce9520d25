"""A secure djangosaml2 ``SAML_CONFIG`` for one saml_jit service provider.

``SAML_CONFIG`` is pysaml2's configuration, and writing it by hand means
knowing a dozen pysaml2 names and their insecure defaults. :func:`saml_config`
builds it from what a site actually decides — where it runs, which IdP it
trusts, where its keys are — with saml_jit's secure defaults::

    from saml_jit.config import saml_config

    SAML_CONFIG = saml_config(
        base_url="https://app.example.org",
        keys_dir=BASE_DIR / ".saml_jit" / "keys",  # python manage.py saml_jit_keys
        idp_metadata_url="https://login.example.org/idp/metadata",
    )

Importable while settings load: it touches neither ``django.conf`` nor the
database. Anything it does not cover goes into ``extra`` (merged last, at the
top level) or is set on the returned dict.

Arguments (all keyword-only; only ``base_url`` is required)
-----------------------------------------------------------

``base_url``
    Where the site is reached, scheme and host (``"http://localhost:8000"``).
``entity_id``
    The SP's entity ID; default ``{base_url}{path}metadata/`` (its metadata URL).
``idp_metadata_xml`` / ``idp_metadata_file`` / ``idp_metadata_url``
    The trusted IdPs' metadata: XML strings, local files, URLs (one or a list of each).
``keys_dir``
    A folder made by ``python manage.py saml_jit_keys``: its signing pair
    signs requests, its encryption pair decrypts encrypted assertions.
``key_file`` / ``cert_file``
    The signing pair, instead of ``keys_dir``; used for decryption too
    unless ``encryption_key_file`` / ``encryption_cert_file`` are given.
``name``
    The SP's display name in its metadata.
``path``
    Where ``saml_jit.urls`` is included (default ``/saml2/``).
``authn_requests_signed``
    Sign AuthnRequests (some IdPs require it; needs keys).
``accepted_time_diff``
    pysaml2's clock skew allowance in seconds (saml_jit's ``CLOCK_SKEW`` also applies).
``extra``
    Merged last at the top level, for anything not covered here.

Secure defaults: signed assertions required, unsolicited responses
refused (IdP-initiated login is enabled per IdP with saml_jit's
``ALLOW_IDP_INITIATED``), persistent NameIDs requested, RSA-SHA256.
Unknown attribute names are kept (``allow_unknown_attributes``) because
pysaml2 otherwise silently drops every name it has no map for, and
saml_jit does its own mapping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

__all__ = ["ENCRYPTION_KEY_NAME", "SIGNING_KEY_NAME", "key_paths", "saml_config"]

#: File names (``.key`` and ``.crt``) that ``saml_jit_keys`` writes and ``keys_dir`` reads.
SIGNING_KEY_NAME = "sp-signing"
ENCRYPTION_KEY_NAME = "sp-encryption"

PathLike = str | os.PathLike[str]


def key_paths(keys_dir: PathLike) -> dict[str, Path]:
    """The four files of an SP key folder: signing and encryption key and certificate."""
    folder = Path(keys_dir)
    return {
        "key_file": folder / f"{SIGNING_KEY_NAME}.key",
        "cert_file": folder / f"{SIGNING_KEY_NAME}.crt",
        "encryption_key_file": folder / f"{ENCRYPTION_KEY_NAME}.key",
        "encryption_cert_file": folder / f"{ENCRYPTION_KEY_NAME}.crt",
    }


def saml_config(
    *,
    base_url: str,
    entity_id: str | None = None,
    idp_metadata_xml: str | list[str] | None = None,
    idp_metadata_file: PathLike | list[str] | None = None,
    idp_metadata_url: str | list[str] | None = None,
    keys_dir: PathLike | None = None,
    key_file: PathLike | None = None,
    cert_file: PathLike | None = None,
    encryption_key_file: PathLike | None = None,
    encryption_cert_file: PathLike | None = None,
    name: str = "saml_jit service provider",
    path: str = "/saml2/",
    authn_requests_signed: bool = False,
    accepted_time_diff: int | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict:
    """Return a djangosaml2 ``SAML_CONFIG`` for an SP whose ``saml_jit.urls`` are at ``{base_url}{path}``.

    The arguments are documented in the module docstring (and the README, Installation).
    """
    sp_url = base_url.rstrip("/") + "/" + path.strip("/") + "/"
    if path.strip("/") == "":
        sp_url = base_url.rstrip("/") + "/"
    keys = _keys(keys_dir, key_file, cert_file, encryption_key_file, encryption_cert_file)
    config: dict = {
        "entityid": entity_id or f"{sp_url}metadata/",
        **_xmlsec_binary_setting(),
        "allow_unknown_attributes": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "metadata": _metadata_sources(idp_metadata_xml, idp_metadata_file, idp_metadata_url),
        "service": {"sp": _sp_service(name, sp_url, authn_requests_signed, signs="key_file" in keys)},
        "debug": 0,
        **keys,
        **({"accepted_time_diff": accepted_time_diff} if accepted_time_diff is not None else {}),
    }
    return {**config, **(extra or {})}


def _keys(
    keys_dir: PathLike | None,
    key_file: PathLike | None,
    cert_file: PathLike | None,
    encryption_key_file: PathLike | None,
    encryption_cert_file: PathLike | None,
) -> dict:
    if keys_dir is not None:
        found = key_paths(keys_dir)
        key_file, cert_file = key_file or found["key_file"], cert_file or found["cert_file"]
        encryption_key_file = encryption_key_file or found["encryption_key_file"]
        encryption_cert_file = encryption_cert_file or found["encryption_cert_file"]
    if not (key_file and cert_file):
        return {}
    signing = {"key_file": str(key_file), "cert_file": str(cert_file)}
    if encryption_key_file and encryption_cert_file:
        encryption = {"key_file": str(encryption_key_file), "cert_file": str(encryption_cert_file)}
    else:
        encryption = signing.copy()
    return {**signing, "encryption_keypairs": [encryption]}


def _xmlsec_binary_setting() -> dict:
    # For stock djangosaml2 views (saml_jit's own views use in-process crypto).
    binary = _xmlsec_binary()
    return {"xmlsec_binary": binary} if binary else {}


def _sp_service(name: str, sp_url: str, authn_requests_signed: bool, *, signs: bool) -> dict:
    return {
        "name": name,
        "name_id_format": NAMEID_FORMAT_PERSISTENT,
        "endpoints": {
            "assertion_consumer_service": [(f"{sp_url}acs/", BINDING_HTTP_POST)],
            "single_logout_service": [
                (f"{sp_url}ls/", BINDING_HTTP_REDIRECT),
                (f"{sp_url}ls/post/", BINDING_HTTP_POST),
            ],
        },
        "want_assertions_signed": True,
        "want_response_signed": False,
        "allow_unsolicited": False,
        "authn_requests_signed": authn_requests_signed,
        "logout_requests_signed": signs,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "required_attributes": [],
        "optional_attributes": [],
    }


def _as_list(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _metadata_sources(xml: object, files: object, urls: object) -> dict:
    metadata: dict = {}
    if inline := _as_list(xml):
        metadata["inline"] = inline
    if local := [str(path) for path in _as_list(files)]:
        metadata["local"] = local
    if remote := [{"url": url} for url in _as_list(urls)]:
        metadata["remote"] = remote
    return metadata


def _xmlsec_binary() -> str | None:
    """The xmlsec1 program, if installed: only stock pysaml2 configurations need it."""
    try:
        return get_xmlsec_binary()
    except Exception:  # pysaml2 raises a bare SigverError with odd search paths
        return shutil.which("xmlsec1")
