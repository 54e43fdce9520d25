"""The service-provider side of the test federation: a djangosaml2 ``SAML_CONFIG``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.sigver import get_xmlsec_binary
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

__all__ = ["sp_saml_config"]


def sp_saml_config(
    *,
    entity_id: str,
    base_url: str,
    idp_metadata_xml: str | list[str] | None = None,
    idp_metadata_file: str | os.PathLike[str] | list[str] | None = None,
    idp_metadata_url: str | list[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    name: str = "saml_jit service provider",
    path: str = "/saml2/",
    authn_requests_signed: bool = False,
    accepted_time_diff: int | None = None,
    extra: Mapping[str, object] | None = None,
) -> dict:
    """Return a djangosaml2 ``SAML_CONFIG`` for an SP mounted at ``{base_url}{path}``.

    Secure defaults: signed assertions required, unsolicited responses
    refused, persistent NameIDs requested, RSA-SHA256 signatures. Unknown
    attribute names are kept (``allow_unknown_attributes``) because pysaml2
    otherwise silently drops every name it has no map for, and saml_jit
    does its own mapping. ``key_file``/``cert_file`` let the SP sign
    requests and decrypt encrypted assertions. ``extra`` is merged last at
    the top level, for anything not covered here.
    """
    sp_url = base_url.rstrip("/") + "/" + path.strip("/") + "/"
    config: dict = {
        "entityid": entity_id,
        **_xmlsec_binary_setting(),
        "allow_unknown_attributes": True,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "metadata": _metadata_sources(idp_metadata_xml, idp_metadata_file, idp_metadata_url),
        "service": {"sp": _sp_service(name, sp_url, authn_requests_signed, signs=bool(key_file))},
        "debug": 0,
        **_key_settings(key_file, cert_file),
        **({"accepted_time_diff": accepted_time_diff} if accepted_time_diff is not None else {}),
    }
    return {**config, **(extra or {})}


def _xmlsec_binary_setting() -> dict:
    # For stock djangosaml2 views (saml_jit's own views use in-process crypto).
    binary = _xmlsec_binary()
    return {"xmlsec_binary": binary} if binary else {}


def _key_settings(key_file: str | os.PathLike[str] | None, cert_file: str | os.PathLike[str] | None) -> dict:
    if not (key_file and cert_file):
        return {}
    keypair = {"key_file": str(key_file), "cert_file": str(cert_file)}
    return {**keypair, "encryption_keypairs": [keypair.copy()]}


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
