"""Key rollover without a flag day, through the real login, metadata and ACS views, on both crypto backends.

* SDP-SP38: an IdP publishes its next signing certificate beside the current
  one; the SP honours a signature by either (and by nothing else).
* SDP-SP39: the SP holds two decryption keys — the new one published in its
  metadata before any IdP uses it, the old one still decrypting — and swaps
  its signing key the same way: the next certificate is published
  (``additional_cert_files``) before the key signs, and the retired one stays
  published until every IdP has refreshed.

Keys are generated at run time (saml_jit.testing.keys); the README's
"Rolling keys" recipe is these steps in this order.
"""

from __future__ import annotations

import base64
import copy
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.contrib.auth import get_user_model
from django.urls import reverse
from lxml import etree
from saml2.sigver import SignatureError

from saml_jit.config import saml_config
from saml_jit.models import ProvisioningEvent
from saml_jit.saml import config, metadata
from saml_jit.saml.backend import get_backend
from saml_jit.testing.idp import TestIdP, generate_keypair
from saml_jit.testing.metadata import MetadataServer, metadata_document
from tests.conftest import person
from tests.federation import (
    BASE_URL,
    IDP_A,
    IDP_B,
    KEYS,
    ROGUE_CERT,
    ROGUE_KEY,
    SP_CERT,
    SP_ENTITY_ID,
    SP_KEY,
)
from tests.test_acs import assert_only_rejection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("crypto_backend")]  # both crypto backends

User = get_user_model()
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
AUTHN_REQUEST = "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest"

IDP_NEXT_KEY, IDP_NEXT_CERT = generate_keypair(KEYS, "idp-a-next", "saml_jit test IdP A (next key)")
SP_NEXT_KEY, SP_NEXT_CERT = generate_keypair(KEYS, "sp-next", "saml_jit test SP (next key)")


def sp_config(idp_metadata: list[str], *, key=SP_KEY, cert=SP_CERT, decryption=None, published=None, **kwargs):
    """The test SP, with ``decryption`` keypairs and ``published`` extra signing certificates."""
    config = saml_config(
        entity_id=SP_ENTITY_ID,
        base_url=BASE_URL,
        idp_metadata_xml=idp_metadata,
        key_file=key,
        cert_file=cert,
        **kwargs,
    )
    if decryption is not None:
        config["encryption_keypairs"] = [{"key_file": str(k), "cert_file": str(c)} for k, c in decryption]
    if published is not None:
        config["additional_cert_files"] = [str(c) for c in published]
    return config


def login(browser, name_id: str, **kwargs):
    return browser.login(name_id=name_id, attributes=person(email=f"{name_id}@example.org"), **kwargs)


def assert_signed_in(response, users: int = 1):
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == users


# --------------------------------------------------------------------------
# SDP-SP38: the IdP's signing key


@pytest.fixture
def idp_rolling(settings):
    """IdP A's metadata names its current and its next signing certificate."""
    xml = metadata_document(IDP_A.metadata_xml(), valid_until=None, extra_signing_certs=[IDP_NEXT_CERT])
    settings.SAML_CONFIG = sp_config([xml.decode("utf-8"), IDP_B.metadata_xml()])


def test_either_idp_signing_key_honoured(browser, idp_rolling):
    assert_signed_in(login(browser, "subject-current"))
    browser.client.logout()
    response = login(browser, "subject-next", signing_key_file=IDP_NEXT_KEY, signing_cert_file=IDP_NEXT_CERT)
    assert_signed_in(response, users=2)


def test_next_idp_key_signing_the_response_only(browser, idp_rolling, settings):
    changed = copy.deepcopy(settings.SAML_CONFIG)
    changed["service"]["sp"].update(want_assertions_signed=False, want_assertions_or_response_signed=True)
    settings.SAML_CONFIG = changed
    response = login(
        browser,
        "subject-next",
        signing_key_file=IDP_NEXT_KEY,
        signing_cert_file=IDP_NEXT_CERT,
        sign_assertion=False,
        sign_response=True,
    )
    assert_signed_in(response)


def test_a_key_not_in_the_metadata_still_refused(browser, idp_rolling):
    response = login(browser, "subject-rogue", signing_key_file=ROGUE_KEY, signing_cert_file=ROGUE_CERT)
    assert_only_rejection(response, "bad_signature")


def test_idp_rollover_through_managed_metadata(browser, settings, tmp_path):
    # The same rollover arriving through SAML_JIT["METADATA"]: old, both, new.
    with MetadataServer() as server:
        url = server.serve("idp-a.xml", metadata_document(IDP_A.metadata_xml()))
        settings.SAML_CONFIG = sp_config([IDP_B.metadata_xml()])
        settings.SAML_JIT = {"METADATA": [url], "METADATA_DIR": str(tmp_path)}
        try:
            assert_signed_in(login(browser, "subject-1"))
            server.serve("idp-a.xml", metadata_document(IDP_A.metadata_xml(), extra_signing_certs=[IDP_NEXT_CERT]))
            _refetch()
            browser.client.logout()
            response = login(browser, "subject-2", signing_key_file=IDP_NEXT_KEY, signing_cert_file=IDP_NEXT_CERT)
            assert_signed_in(response, users=2)
            next_idp = TestIdP(IDP_A.entity_id, IDP_NEXT_KEY, IDP_NEXT_CERT, IDP_A.base_url)
            server.serve("idp-a.xml", metadata_document(next_idp.metadata_xml()))
            _refetch()
            browser.client.logout()
            assert_only_rejection_after(login(browser, "subject-3"), "bad_signature")
        finally:
            _forget()


def _refetch() -> None:
    metadata.refresh(metadata.sources()[0])
    config.refresh()


def _forget() -> None:
    for source in metadata.sources():
        metadata.Store().forget(source)


def assert_only_rejection_after(response, code):
    assert response.status_code == 400
    assert ProvisioningEvent.objects.filter(kind="rejected").get().reason_code == code


# --------------------------------------------------------------------------
# SDP-SP39: the SP's decryption keys


@pytest.fixture
def sp_two_decryption_keys(settings):
    """Step 1 of the rollover: the new decryption keypair beside the old one."""
    settings.SAML_CONFIG = sp_config(
        [IDP_A.metadata_xml(), IDP_B.metadata_xml()], decryption=[(SP_NEXT_KEY, SP_NEXT_CERT), (SP_KEY, SP_CERT)]
    )


def published_certs(client, use: str) -> set[str]:
    """The certificates the SP's metadata view publishes for ``use``."""
    root = etree.fromstring(client.get(reverse("saml2_metadata")).content)
    descriptors = root.iter(f"{{{MD}}}KeyDescriptor")
    return {
        "".join((element.text or "").split())
        for descriptor in descriptors
        if descriptor.get("use") == use
        for element in descriptor.iter(f"{{{DS}}}X509Certificate")
    }


def b64(cert_file) -> str:
    with open(cert_file, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def test_both_decryption_certificates_published(client, sp_two_decryption_keys):
    assert published_certs(client, "encryption") == {b64(SP_NEXT_CERT), b64(SP_CERT)}


@pytest.mark.parametrize("cert", [SP_CERT, SP_NEXT_CERT], ids=["old-key", "new-key"])
def test_either_decryption_key_decrypts(browser, sp_two_decryption_keys, cert):
    assert_signed_in(login(browser, "subject-enc", encrypt_for_cert=cert))


def test_a_certificate_the_sp_does_not_hold_is_refused(browser, sp_two_decryption_keys):
    response = login(browser, "subject-enc", encrypt_for_cert=ROGUE_CERT)
    assert_only_rejection(response, "decryption_failed")


def test_retired_decryption_key_no_longer_decrypts(browser, settings):
    # Last step: the old keypair removed once every IdP encrypts for the new one.
    settings.SAML_CONFIG = sp_config(
        [IDP_A.metadata_xml(), IDP_B.metadata_xml()], decryption=[(SP_NEXT_KEY, SP_NEXT_CERT)]
    )
    assert_signed_in(login(browser, "subject-new", encrypt_for_cert=SP_NEXT_CERT))
    browser.client.logout()
    response = login(browser, "subject-old", encrypt_for_cert=SP_CERT)
    assert response.status_code == 400
    assert User.objects.count() == 1


# --------------------------------------------------------------------------
# SDP-SP39: the SP's signing key


def signed_request(client) -> tuple[bytes, str]:
    """The SP's signed AuthnRequest (djangosaml2 posts signed requests): its XML and ID."""
    response = client.get(reverse("saml2_login"), {"idp": IDP_A.entity_id})
    assert response.status_code == 200, response.content[:500]
    match = re.search(rb'name="SAMLRequest" value="([^"]+)"', response.content)
    assert match, response.content[:500]
    xml = base64.b64decode(match.group(1))
    return xml, etree.fromstring(xml).get("ID")


def verifies_with(request: tuple[bytes, str], cert_file) -> bool:
    """What an IdP holding ``cert_file`` from the SP's metadata does with the request."""
    xml, request_id = request
    try:
        return get_backend().validate_signature(xml, str(cert_file), "pem", AUTHN_REQUEST, request_id)
    except SignatureError:
        return False


def test_signing_key_swap_with_overlap(client, settings):
    idps = [IDP_A.metadata_xml(), IDP_B.metadata_xml()]
    # Step 1: publish the next signing certificate; the current key still signs.
    settings.SAML_CONFIG = sp_config(idps, authn_requests_signed=True, published=[SP_NEXT_CERT])
    assert published_certs(client, "signing") == {b64(SP_CERT), b64(SP_NEXT_CERT)}
    idp_knows = published_certs(client, "signing")  # what IdPs fetch during the overlap
    assert verifies_with(signed_request(client), SP_CERT)
    # Step 2: swap; the retired certificate stays published until every IdP has refreshed.
    settings.SAML_CONFIG = sp_config(
        idps, key=SP_NEXT_KEY, cert=SP_NEXT_CERT, authn_requests_signed=True, published=[SP_CERT]
    )
    request = signed_request(client)
    assert verifies_with(request, SP_NEXT_CERT)
    assert not verifies_with(request, SP_CERT)
    assert b64(SP_NEXT_CERT) in idp_knows  # an IdP that fetched during step 1 accepts the new signatures
    # Step 3: retire the old certificate from the metadata.
    settings.SAML_CONFIG = sp_config(idps, key=SP_NEXT_KEY, cert=SP_NEXT_CERT, authn_requests_signed=True)
    assert published_certs(client, "signing") == {b64(SP_NEXT_CERT)}
