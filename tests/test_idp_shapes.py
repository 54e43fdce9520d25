"""Responses as IdPs really send them, through the real ACS, on both crypto backends.

Which element an IdP signs is a setting of the IdP, with different defaults:

* Shibboleth IdP (``idp.saml2.SSO``): signs the Response, encrypts an
  *unsigned* Assertion;
* Microsoft Entra ID: signs the Assertion by default, can be set to sign the
  Response only ("Sign SAML response");
* AD FS: signs the Assertion by default, can be set to sign the message only
  (``SamlResponseSignature MessageOnly``), and encrypts when the relying
  party trust holds an encryption certificate;
* some IdPs leave out the Response's own ``<Issuer>`` (allowed by SAML
  Profiles §4.1.4.2 when the Response is not signed).

The README documents ``want_assertions_or_response_signed`` for the first
three: these tests prove that configuration accepts each of them and still
refuses a response where nothing is signed.
"""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from saml_jit.models import FederatedIdentity, ProvisioningEvent
from tests.federation import IDP_A, SP_CERT, saml_config
from tests.test_acs import assert_only_rejection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("crypto_backend")]  # both crypto backends

User = get_user_model()

#: Signed Response with an unsigned, encrypted Assertion.
SHIBBOLETH = {"sign_response": True, "sign_assertion": False, "encrypt_for_cert": SP_CERT}
#: Signed Response only, assertion in the clear.
ENTRA_RESPONSE_ONLY = {"sign_response": True, "sign_assertion": False}
#: Signed message only, assertion encrypted for the SP.
ADFS_MESSAGE_ONLY = {"sign_response": True, "sign_assertion": False, "encrypt_for_cert": SP_CERT}
#: Entra's and AD FS's default: the Assertion signed, the Response not.
ASSERTION_ONLY = {"sign_response": False, "sign_assertion": True}
#: No Response Issuer, unsigned Response, signed Assertion (SAML Profiles §4.1.4.2).
NO_RESPONSE_ISSUER = {"sign_response": False, "sign_assertion": True, "response_issuer": False}
NOTHING_SIGNED = {"sign_response": False, "sign_assertion": False}


def response_or_assertion_signed() -> dict:
    """The SAML_CONFIG the README documents for IdPs that sign the Response only."""
    config = copy.deepcopy(saml_config())
    config["service"]["sp"].update(
        want_assertions_signed=False,
        want_response_signed=False,
        want_assertions_or_response_signed=True,
    )
    return config


@pytest.fixture
def either_signed(settings):
    settings.SAML_CONFIG = response_or_assertion_signed()


def assert_signed_in(response):
    assert response.status_code == 302, response.content[:2000]
    identity = FederatedIdentity.objects.get()
    assert identity.idp_entity_id == IDP_A.entity_id
    assert identity.user == User.objects.get()
    assert ProvisioningEvent.objects.filter(kind="created", idp_entity_id=IDP_A.entity_id).count() == 1


@pytest.mark.parametrize(
    "shape",
    [SHIBBOLETH, ENTRA_RESPONSE_ONLY, ADFS_MESSAGE_ONLY, ASSERTION_ONLY, NO_RESPONSE_ISSUER],
    ids=["shibboleth", "entra-response-only", "adfs-message-only", "assertion-only", "no-response-issuer"],
)
def test_either_signed_accepts_what_idps_send(browser, either_signed, shape):
    assert_signed_in(browser.login(**shape))


def test_either_signed_refuses_nothing_signed(browser, either_signed):
    response = browser.login(**NOTHING_SIGNED)
    event = assert_only_rejection(response, "bad_signature")
    assert event.idp_entity_id == IDP_A.entity_id


def test_either_signed_refuses_nothing_signed_even_encrypted(browser, either_signed):
    # Encryption for the SP is no proof of origin: anyone can encrypt to the SP's public certificate.
    # Refused as every failure around decryption is: one code, no oracle.
    response = browser.login(**NOTHING_SIGNED, encrypt_for_cert=SP_CERT)
    assert_only_rejection(response, "decryption_failed")


def test_default_config_refuses_a_response_signed_only(browser):
    # The secure default (signed assertions) refuses Shibboleth's default shape:
    # the README says to set want_assertions_or_response_signed for it.
    response = browser.login(**SHIBBOLETH)
    assert_only_rejection(response, "decryption_failed")
    ProvisioningEvent.objects.all().delete()
    response = browser.login(**ENTRA_RESPONSE_ONLY)
    assert_only_rejection(response, "bad_signature")


def test_default_config_accepts_no_response_issuer(browser):
    # §4.1.4.2: an unsigned Response may leave out its Issuer; the signed assertion names the IdP.
    assert_signed_in(browser.login(**NO_RESPONSE_ISSUER))


def test_no_response_issuer_with_encrypted_assertion(browser):
    # Nothing readable names the IdP before decryption; the decrypted, verified assertion does.
    assert_signed_in(browser.login(**NO_RESPONSE_ISSUER, encrypt_for_cert=SP_CERT))


def test_signed_response_without_issuer_refused(browser, either_signed):
    # Nothing names whose key should verify the Response's signature (§4.1.4.2 requires the Issuer then).
    response = browser.login(sign_response=True, sign_assertion=False, response_issuer=False)
    assert_only_rejection(response, "bad_signature")


def test_no_response_issuer_assertion_from_another_idp_is_theirs(browser):
    # The assertion's issuer decides whose metadata verifies it: IdP A's key signing
    # an assertion that claims IdP B does not verify.
    response = browser.login(**NO_RESPONSE_ISSUER, issuer="https://idp-b.example.net/idp/metadata")
    assert_only_rejection(response, "bad_signature")


def test_logout_after_a_login_without_response_issuer(browser):
    # The session is filed under the assertion's issuer: SP-initiated logout reaches IdP A.
    assert_signed_in(browser.login(**NO_RESPONSE_ISSUER))
    response = browser.client.get(reverse("saml2_logout"))
    assert response.status_code == 302, response.content[:2000]
    assert response["Location"].startswith(IDP_A.slo_url)
