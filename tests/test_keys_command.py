"""``manage.py saml_jit_keys`` and the public SAML_CONFIG helper (:mod:`saml_jit.config`).

The generated keys are proven real: the SP signs with the signing pair and
decrypts, through the real ACS, an assertion encrypted for the encryption
certificate.
"""

from __future__ import annotations

import io
import stat
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from saml_jit.config import key_paths, saml_config
from saml_jit.testing.sp import sp_saml_config
from tests.conftest import person
from tests.federation import BASE_URL, IDP_A, SP_ENTITY_ID
from tests.federation import saml_config as federation_config

User = get_user_model()


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("saml_jit_keys", *args, stdout=out)
    return out.getvalue()


def _assert_pair(key_file, cert_file) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_writes_the_files_saml_config_names(tmp_path):
    folder = tmp_path / "keys"
    with override_settings(SAML_CONFIG=saml_config(base_url=BASE_URL, keys_dir=folder)):
        output = _run()
    paths = key_paths(folder)
    _assert_pair(paths["key_file"], paths["cert_file"])
    _assert_pair(paths["encryption_key_file"], paths["encryption_cert_file"])
    assert paths["key_file"].read_bytes() != paths["encryption_key_file"].read_bytes()
    assert (folder / ".gitignore").read_text() == "*\n"
    assert "never commit" in output


def test_refuses_to_overwrite_without_force(tmp_path):
    _run("--dir", str(tmp_path))
    before = key_paths(tmp_path)["key_file"].read_bytes()
    with pytest.raises(CommandError, match="--force"):
        _run("--dir", str(tmp_path))
    assert key_paths(tmp_path)["key_file"].read_bytes() == before
    _run("--dir", str(tmp_path), "--force")
    after = key_paths(tmp_path)["key_file"]
    assert after.read_bytes() != before
    _assert_pair(after, key_paths(tmp_path)["cert_file"])


def test_without_configured_keys_writes_into_dot_saml_jit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with override_settings(SAML_CONFIG={}):
        _run("--common-name", "My site")
    paths = key_paths(tmp_path / ".saml_jit" / "keys")
    cert = x509.load_pem_x509_certificate(paths["cert_file"].read_bytes())
    assert cert.subject.rfc4514_string() == "CN=My site"
    _assert_pair(paths["encryption_key_file"], paths["encryption_cert_file"])


@pytest.mark.django_db
def test_generated_keys_decrypt_an_encrypted_assertion_through_the_acs(tmp_path, browser):
    _run("--dir", str(tmp_path))
    config = saml_config(
        base_url=BASE_URL, entity_id=SP_ENTITY_ID, keys_dir=tmp_path, idp_metadata_xml=IDP_A.metadata_xml()
    )
    with override_settings(SAML_CONFIG=config):
        response = browser.login(attributes=person(), encrypt_for_cert=key_paths(tmp_path)["encryption_cert_file"])
    assert response.status_code == 302, response.content[:500]
    assert User._default_manager.get().email == "alice@example.org"


def test_saml_config_keys_dir_and_defaults(tmp_path):
    config = saml_config(base_url="http://localhost:8000/", keys_dir=tmp_path)
    paths = key_paths(tmp_path)
    assert config["entityid"] == "http://localhost:8000/saml2/metadata/"
    assert (config["key_file"], config["cert_file"]) == (str(paths["key_file"]), str(paths["cert_file"]))
    assert config["encryption_keypairs"] == [
        {"key_file": str(paths["encryption_key_file"]), "cert_file": str(paths["encryption_cert_file"])}
    ]
    sp = config["service"]["sp"]
    assert sp["want_assertions_signed"] is True and sp["allow_unsolicited"] is False
    assert sp["endpoints"]["assertion_consumer_service"] == [
        ("http://localhost:8000/saml2/acs/", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    ]
    assert sp["logout_requests_signed"] is True
    assert "key_file" not in saml_config(base_url="http://localhost:8000")


def test_the_old_testing_name_warns_and_builds_the_same():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = sp_saml_config(entity_id=SP_ENTITY_ID, base_url=BASE_URL, idp_metadata_xml=IDP_A.metadata_xml())
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "saml_jit.config.saml_config" in str(caught[0].message)
    assert old == saml_config(entity_id=SP_ENTITY_ID, base_url=BASE_URL, idp_metadata_xml=IDP_A.metadata_xml())
    assert federation_config()["entityid"] == SP_ENTITY_ID
