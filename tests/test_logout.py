"""IdP-initiated single logout over HTTP-Redirect: no forced logout by link.

The LogoutRequests are built by pysaml2's own IdP (``Server.create_logout_request``
+ ``apply_binding(BINDING_HTTP_REDIRECT, sign=..., sigalg=...)``) and sent to
saml_jit's ``/saml2/ls/`` by a browser that signed in for real. Stock
djangosaml2's LogoutView (``/stock-saml2/ls/``) gets the same kind of message
for comparison: it accepts an unsigned one and logs the person out.
"""

from __future__ import annotations

import copy
import functools
import shutil
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from saml2 import BINDING_HTTP_REDIRECT, saml
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256

from saml_jit.models import EventKind, ProvisioningEvent
from saml_jit.testing.idp import TestIdP
from tests.conftest import person
from tests.federation import IDP_A, IDP_B, ROGUE_CERT, ROGUE_KEY, SP_ENTITY_ID

pytestmark = pytest.mark.django_db

User = get_user_model()
SUBJECT = "subject-alice-0001"
SLO_URL = "http://testserver/saml2/ls/"


@functools.cache
def _sp_metadata() -> str:
    return str(entity_descriptor(SPConfig().load(copy.deepcopy(django_settings.SAML_CONFIG))))


@functools.cache
def logout_idp(key_file: str = IDP_A.key_file, cert_file: str = IDP_A.cert_file, entity_id: str = IDP_A.entity_id):
    """IdP A (or a signer claiming to be it) that knows the SP, to send it logout requests."""
    base = IDP_A.base_url if entity_id == IDP_A.entity_id else IDP_B.base_url
    return TestIdP(entity_id, key_file, cert_file, base, sp_metadata=_sp_metadata())


ROGUE = (str(ROGUE_KEY), str(ROGUE_CERT))


def logout_request_path(
    idp: TestIdP | None = None,
    *,
    sign: bool = True,
    sigalg: str = SIG_RSA_SHA256,
    name_id: str = SUBJECT,
    relay_state: str = "",
) -> str:
    """A LogoutRequest for ``name_id`` over HTTP-Redirect: the path and query to GET."""
    idp = idp or logout_idp()
    _, request = idp.server.create_logout_request(
        destination=SLO_URL,
        issuer_entity_id=SP_ENTITY_ID,
        name_id=saml.NameID(
            text=name_id,
            format=saml.NAMEID_FORMAT_PERSISTENT,
            name_qualifier=idp.entity_id,
            sp_name_qualifier=SP_ENTITY_ID,
        ),
        sign=False,
    )
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), SLO_URL, relay_state, sign=sign, sigalg=sigalg if sign else None
    )
    location = urlparse(dict(info["headers"])["Location"])
    return f"{location.path}?{location.query}"


def stock_path(path: str) -> str:
    return path.replace("/saml2/ls/", reverse("stock_ls"), 1)


@pytest.fixture
def signed_in(browser):
    response = browser.login(name_id=SUBJECT, attributes=person())
    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert browser.client.session["_auth_user_id"] == str(user.pk)
    return user


def assert_logout_refused(browser, user, response, code, status=403):
    assert response.status_code == status, response.content[:2000]
    assert f"<code>{code}</code>".encode() in response.content
    # Still signed in.
    assert browser.client.session.get("_auth_user_id") == str(user.pk)
    new = list(ProvisioningEvent.objects.exclude(kind=EventKind.CREATED))
    assert [(e.kind, e.reason_code) for e in new] == [(EventKind.REJECTED, code)]


def stock_logout(browser, path: str):
    """The same kind of request to stock djangosaml2's LogoutView."""
    if not shutil.which("xmlsec1"):
        pytest.skip("stock djangosaml2 needs the xmlsec1 program for the comparison")
    browser.client.raise_request_exception = False
    try:
        return browser.client.get(stock_path(path))
    finally:
        browser.client.raise_request_exception = True


def test_unsigned_logout_request_refused(browser, signed_in):
    path = logout_request_path(sign=False)
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "logout_unsigned")
    # Stock: the unsigned request logs the person out (forced logout by link).
    stock = stock_logout(browser, path)
    assert stock.status_code == 302, stock.content[:500]
    assert "_auth_user_id" not in browser.client.session


def test_logout_request_signed_with_rogue_key_refused(browser, signed_in):
    path = logout_request_path(logout_idp(*ROGUE))
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")
    stock = stock_logout(browser, path)
    assert "_auth_user_id" not in browser.client.session, stock.status_code


def test_logout_request_signed_by_another_trusted_idp_refused(browser, signed_in):
    # IdP B's key, IdP A's name as Issuer: only A's metadata certificates count.
    path = logout_request_path(logout_idp(IDP_B.key_file, IDP_B.cert_file))
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")


def test_logout_request_with_tampered_query_refused(browser, signed_in):
    path = logout_request_path(relay_state="/after/")
    response = browser.client.get(path.replace("RelayState=%2Fafter%2F", "RelayState=%2Fother%2F"))
    assert_logout_refused(browser, signed_in, response, "logout_bad_signature")


def test_logout_request_from_unknown_issuer_refused(browser, signed_in):
    stranger = logout_idp(*ROGUE, entity_id="https://stranger.example/idp")
    response = browser.client.get(logout_request_path(stranger))
    assert_logout_refused(browser, signed_in, response, "unknown_issuer")


def test_signed_logout_request_logs_out(browser, signed_in):
    response = browser.client.get(logout_request_path(relay_state="/bye/"))
    assert response.status_code == 302, response.content[:2000]
    # The SP answers the IdP with a LogoutResponse on IdP A's logout endpoint.
    assert response["Location"].startswith(IDP_A.slo_url)
    assert "SAMLResponse=" in response["Location"]
    assert "_auth_user_id" not in browser.client.session
    assert not ProvisioningEvent.objects.filter(kind=EventKind.REJECTED).exists()


def test_sha1_logout_request_refused(browser, signed_in):
    path = logout_request_path(sigalg=SIG_RSA_SHA1)
    response = browser.client.get(path)
    assert_logout_refused(browser, signed_in, response, "weak_algorithm")
    stock = stock_logout(browser, path)
    assert "_auth_user_id" not in browser.client.session, stock.status_code


def test_sha1_logout_request_allowed_per_idp(browser, signed_in, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_SHA1": True}}}
    response = browser.client.get(logout_request_path(sigalg=SIG_RSA_SHA1))
    assert response.status_code == 302, response.content[:2000]
    assert "_auth_user_id" not in browser.client.session


def test_unsigned_logout_allowed_only_when_configured(browser, signed_in, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"REQUIRE_SIGNED_LOGOUT": False}}}
    response = browser.client.get(logout_request_path(sign=False))
    assert response.status_code == 302, response.content[:2000]
    assert "_auth_user_id" not in browser.client.session


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("SAMLRequest=%%%not-base64", id="not-base64"),
        pytest.param("SAMLRequest=aGVsbG8=", id="not-deflated"),
    ],
)
def test_malformed_logout_request(browser, signed_in, query):
    response = browser.client.get(f"/saml2/ls/?{query}")
    assert_logout_refused(browser, signed_in, response, "malformed_logout", status=400)
