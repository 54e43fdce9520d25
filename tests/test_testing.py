"""The test IdP's own contract (saml_jit.testing): a ResponseSpec, or its fields as keywords."""

from __future__ import annotations

import base64
import dataclasses

import pytest
import saml2
from django.conf import settings as django_settings
from lxml import etree
from saml2.client import Saml2Client

from saml_jit.saml.config import build_sp_config
from saml_jit.testing import ResponseSpec
from tests.conftest import person
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, SP_CERT, SP_ENTITY_ID

REQUEST_ID = "id-request-0001"
SPEC = ResponseSpec(
    sp_entity_id=SP_ENTITY_ID,
    acs_url=ACS_URL,
    name_id="subject-alice-0001",
    attributes=person(),
    friendly_names=FRIENDLY_NAMES,
    in_response_to=REQUEST_ID,
)


def name_id(xml: str) -> str:
    client = Saml2Client(build_sp_config(django_settings.SAML_CONFIG, "xmlsec"))
    encoded = base64.b64encode(xml.encode("utf-8")).decode("ascii")
    return client.parse_authn_request_response(encoded, saml2.BINDING_HTTP_POST, {REQUEST_ID: "/"}).name_id.text


def test_a_spec_and_its_keywords_mint_the_same_response():
    ids = {"assertion_id": "id-a", "response_id": "id-r"}
    by_spec = IDP_A.make_response(SPEC, **ids)
    keywords = {field.name: getattr(SPEC, field.name) for field in dataclasses.fields(SPEC)}
    by_keywords = IDP_A.make_response(**{**keywords, **ids})
    assert etree.fromstring(by_spec.encode()).get("ID") == etree.fromstring(by_keywords.encode()).get("ID") == "id-r"
    assert name_id(by_spec) == name_id(by_keywords) == "subject-alice-0001"


def test_changes_apply_to_a_copy_of_the_spec():
    encrypted = IDP_A.make_response(SPEC, encrypt_for_cert=SP_CERT, name_id="subject-bob-0002")
    assert "EncryptedAssertion" in encrypted
    assert name_id(encrypted) == "subject-bob-0002"
    assert SPEC.encrypt_for_cert is None and SPEC.name_id == "subject-alice-0001"
    data = IDP_A.post_data(SPEC)
    assert name_id(base64.b64decode(data["SAMLResponse"]).decode()) == "subject-alice-0001"


def test_spec_is_frozen_and_checks_its_options():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPEC.name_id = "someone"  # type: ignore[misc]
    with pytest.raises(TypeError):
        IDP_A.make_response(SPEC, no_such_option=True)
    with pytest.raises(TypeError):
        IDP_A.make_response(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL)  # name_id is required


def test_tamper_runs_last():
    seen: list[str] = []

    def tamper(xml: str) -> str:
        seen.append(xml)
        return xml.replace("subject-alice-0001", "subject-eve-0003")

    xml = IDP_A.make_response(SPEC, tamper=tamper)
    assert "SignatureValue" in seen[0] and "subject-alice-0001" in seen[0]
    assert "subject-eve-0003" in xml


def test_importing_the_test_idp_prints_no_cfb_warning_and_leaves_no_filter():
    """pysaml2's AESCipher names cryptography's moved CFB mode; the dev IdP's import hides only that warning."""
    import subprocess
    import sys

    program = (
        "import warnings; warnings.simplefilter('always'); before = list(warnings.filters)\n"
        "import saml_jit.testing.idp\n"
        "added = [f for f in warnings.filters if f not in before and f[1] is not None]\n"  # by message
        "assert not added, added\n"
        "import cryptography.hazmat.primitives.ciphers.modes as modes; modes.CFB\n"  # others still warn
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "saml2/cryptography/symmetric.py" not in done.stderr
    assert "CFB has been moved" in done.stderr  # the same warning from anywhere else is untouched


_KEYPAIR_RACE = """
import sys, time
from pathlib import Path
from saml_jit.testing.keys import generate_keypair
while not Path(sys.argv[2]).exists():  # start together
    time.sleep(0.001)
key, cert = generate_keypair(sys.argv[1], "shared", "saml_jit race")
print(key.read_text() + cert.read_text())  # the pair this process goes on to use
"""


def test_processes_side_by_side_get_one_matching_key_pair(tmp_path):
    """Several test processes (CI runs two) generating one key pair at once: the key matches the certificate."""
    import subprocess
    import sys
    import time

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    for attempt in range(3):
        folder, go = tmp_path / f"keys-{attempt}", tmp_path / f"go-{attempt}"
        command = [sys.executable, "-c", _KEYPAIR_RACE, str(folder), str(go)]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(6)]
        time.sleep(1.5)  # all six imported and waiting
        go.touch()
        seen = {run.communicate(timeout=120)[0] for run in runs}
        assert [run.returncode for run in runs] == [0] * 6
        key_pem, cert_pem = (folder / "shared.key").read_bytes(), (folder / "shared.crt").read_bytes()
        # Every process went on with the one pair left on disk, never with one another process replaced.
        assert seen == {(key_pem + cert_pem).decode() + "\n"}
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
        assert cert.public_key().public_numbers() == key.public_key().public_numbers()
