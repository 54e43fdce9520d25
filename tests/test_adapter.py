"""pysaml2 is patched only while the in-process backend is selected (saml_jit.saml.adapter).

Importing saml_jit (or its test IdP) changes nothing in pysaml2; the app
patches it at start-up when ``CRYPTO_BACKEND`` is ``"xmlsec"`` and follows
changes of ``SAML_JIT``; the test IdP needs neither the patch nor the
``xmlsec1`` program.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import saml2
from django.apps import apps
from django.conf import settings as django_settings
from django.test import override_settings
from saml2.client import Saml2Client
from saml2.metadata import entity_descriptor
from saml2.sigver import CryptoBackendXmlSec1

from saml_jit.saml import adapter
from saml_jit.saml.backend import get_backend
from saml_jit.saml.config import build_sp_config, get_sp_config, refresh
from saml_jit.testing.idp import TestIdP
from tests.conftest import person
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, SP_CERT, SP_ENTITY_ID

ROOT = Path(__file__).resolve().parent.parent
SUBJECT = "subject-alice-0001"
REQUEST_ID = "id-request-0001"

needs_xmlsec1 = pytest.mark.skipif(not shutil.which("xmlsec1"), reason="the xmlsec1 program is not installed")


@pytest.fixture(autouse=True)
def _restore():
    refresh()
    yield
    adapter.enable()  # the suite's settings select "xmlsec"
    refresh()


def xmlsec1_client() -> Saml2Client:
    return Saml2Client(build_sp_config(django_settings.SAML_CONFIG, "xmlsec1"))


def accepted(client: Saml2Client, xml: str) -> str:
    encoded = base64.b64encode(xml.encode("utf-8")).decode("ascii")
    response = client.parse_authn_request_response(encoded, saml2.BINDING_HTTP_POST, {REQUEST_ID: "/"})
    return response.name_id.text


# --------------------------------------------------------------------------
# Importing patches nothing


def test_importing_saml_jit_does_not_patch_pysaml2():
    code = (
        "import saml2.entity, saml2.sigver\n"
        "original = saml2.entity.security_context, saml2.sigver.validate_doc_with_schema\n"
        "import saml_jit.testing, saml_jit.testing.idp, saml_jit.crypto, saml_jit.spconfig\n"
        "from saml_jit.saml import adapter\n"
        "assert not adapter.is_enabled()\n"
        "assert (saml2.entity.security_context, saml2.sigver.validate_doc_with_schema) == original\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_former_module_paths_reexport():
    import importlib
    import sys

    from saml_jit.saml import backend, keys, security

    sys.modules.pop("saml_jit.crypto", None)
    with pytest.deprecated_call(match="saml_jit.crypto moved"):
        importlib.import_module("saml_jit.crypto")
    import saml_jit.crypto

    assert saml_jit.crypto.BACKEND_NAME == adapter.BACKEND_NAME
    for name in ("enable", "disable", "install", "is_enabled"):
        assert getattr(saml_jit.crypto, name) is getattr(adapter, name)
    assert saml_jit.crypto.XmlSecBackend is backend.XmlSecBackend
    assert saml_jit.crypto.get_backend is backend.get_backend
    assert saml_jit.crypto.rsa_crypto is keys.rsa_crypto
    assert saml_jit.crypto.SecurityContext is security.SecurityContext
    assert saml_jit.crypto.security_context is security.security_context


# --------------------------------------------------------------------------
# The setting decides


def test_app_start_patches_only_for_xmlsec(settings):
    config = apps.get_app_config("saml_jit")
    adapter.disable()
    config.ready()
    assert adapter.is_enabled()
    settings.SAML_JIT = {"CRYPTO_BACKEND": "xmlsec1"}
    adapter.enable()
    config.ready()
    assert not adapter.is_enabled()


def test_switching_the_setting_switches_the_patch():
    assert adapter.is_enabled()
    with override_settings(SAML_JIT={"CRYPTO_BACKEND": "xmlsec1"}):
        assert not adapter.is_enabled()
        with override_settings(SAML_JIT={"CRYPTO_BACKEND": "xmlsec"}):
            assert adapter.is_enabled()
        assert not adapter.is_enabled()
    assert adapter.is_enabled()


def test_an_unknown_setting_leaves_pysaml2_as_it_is():
    with override_settings(SAML_JIT={"CRYPTO_BACKEND": "openssl"}):
        assert adapter.is_enabled()
    with override_settings(SAML_JIT={"CRYPTO_BACKEND": "xmlsec1"}), override_settings(SAML_JIT={"CRYPTO_BACKEND": "x"}):
        assert not adapter.is_enabled()


def test_building_an_xmlsec_config_enables_the_patch(settings):
    settings.SAML_JIT = {"CRYPTO_BACKEND": "xmlsec1"}
    assert not adapter.is_enabled()
    conf = build_sp_config(django_settings.SAML_CONFIG, "xmlsec")
    assert adapter.is_enabled()
    assert Saml2Client(conf).sec.crypto is get_backend()


@needs_xmlsec1
@pytest.mark.django_db
def test_logins_through_the_xmlsec1_path_without_the_patch(settings, browser):
    settings.SAML_JIT = {"CRYPTO_BACKEND": "xmlsec1"}
    assert not adapter.is_enabled()
    conf = get_sp_config()
    assert conf.crypto_backend == "xmlsec1"
    assert isinstance(Saml2Client(conf).sec.crypto, CryptoBackendXmlSec1)
    response = browser.login(name_id=SUBJECT)
    assert response.status_code == 302, response.content[:500]
    assert browser.client.session.get("_auth_user_id")
    assert not adapter.is_enabled()

    settings.SAML_JIT = {"CRYPTO_BACKEND": "xmlsec"}
    assert adapter.is_enabled()
    browser.client.logout()
    assert get_sp_config().crypto_backend == adapter.BACKEND_NAME
    response = browser.login(name_id=SUBJECT)
    assert response.status_code == 302, response.content[:500]
    assert browser.client.session.get("_auth_user_id")


# --------------------------------------------------------------------------
# The test IdP: in-process on its own Server, no patch, no program


@needs_xmlsec1
def test_test_idp_works_without_the_patch_or_the_program(monkeypatch):
    adapter.disable()
    monkeypatch.setenv("PATH", "/nonexistent")
    idp = TestIdP(IDP_A.entity_id, IDP_A.key_file, IDP_A.cert_file, IDP_A.base_url, sp_metadata=[])
    idp.add_sp_metadata(str(entity_descriptor(build_sp_config(django_settings.SAML_CONFIG, "xmlsec1"))))
    assert idp.server.sec.crypto is get_backend()
    assert idp.server.metadata.security.crypto is get_backend()
    options = {
        "sp_entity_id": SP_ENTITY_ID,
        "acs_url": ACS_URL,
        "name_id": SUBJECT,
        "attributes": person(),
        "friendly_names": FRIENDLY_NAMES,
        "in_response_to": REQUEST_ID,
    }
    signed, encrypted = idp.make_response(**options), idp.make_response(**options, encrypt_for_cert=SP_CERT)
    assert not adapter.is_enabled()
    monkeypatch.undo()  # the SP side here is pysaml2's xmlsec1 path, which needs the program
    assert accepted(xmlsec1_client(), signed) == SUBJECT
    assert accepted(xmlsec1_client(), encrypted) == SUBJECT
    assert not adapter.is_enabled()
