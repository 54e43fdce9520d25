"""The development IdP (saml_jit.contrib.devidp) through the real SP views, without a browser.

Each login goes SP login view → AuthnRequest (HTTP-Redirect) → the dev IdP's
picker → its signed response → the real ACS, the way a browser would carry
it; nothing in pysaml2's validation is bypassed.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import Error, Warning
from django.test import override_settings

from saml_jit.config import saml_config
from saml_jit.contrib import devidp
from saml_jit.contrib.devidp import checks as devidp_checks
from saml_jit.contrib.devidp import idp as devidp_idp
from saml_jit.contrib.devidp import persons
from saml_jit.models import ProvisioningEvent
from tests.federation import BASE_URL, KEYS, SP_CERT, SP_KEY

User = get_user_model()
SAML_JIT = {
    "GROUP_MAP": {"sales": ["Sales"], "engineering": ["Engineering"]},
    "CREATE_GROUPS": True,
    "ALLOWED_EMAIL_DOMAINS": ["example.org"],
}
DENIED = {
    "key": "dave",
    "name_id": "dave-0004",
    "attributes": {"mail": ["dave@partner.example"], "givenName": ["Dave"]},
    "groups": [],
}


@pytest.fixture
def dev_site():
    """The test SP trusting the dev IdP (mounted at /devidp/), DEBUG on; the IdP's registration restored after."""
    saved = devidp_idp._site, devidp_idp._cached
    xml = devidp.metadata(BASE_URL, keys_dir=KEYS)
    config = saml_config(base_url=BASE_URL, key_file=SP_KEY, cert_file=SP_CERT, idp_metadata_xml=xml)
    overrides = {"DEBUG": True, "ROOT_URLCONF": "tests.devidp_urls", "SAML_CONFIG": config, "SAML_JIT": SAML_JIT}
    with override_settings(**overrides):
        yield xml
    devidp_idp._site, devidp_idp._cached = saved


def _field(content: bytes, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"'.encode(), content)
    assert match, content[:800]
    return html.unescape(match.group(1).decode())


def _picker(client):
    """Start an SP-initiated login; return the dev IdP's picker page.

    djangosaml2 sends the AuthnRequest over HTTP-POST (an auto-submitted form)
    unless ``SAML_DEFAULT_BINDING`` says HTTP-Redirect; both are followed.
    """
    response = client.get("/saml2/login/", {"next": "/"})
    if response.status_code == 302:
        location = urlparse(response["Location"])
        assert location.path == "/devidp/sso/redirect/"
        return client.get(f"{location.path}?{location.query}")
    assert response.status_code == 200, response.content[:500]
    action = re.search(rb'action="([^"]+)"', response.content).group(1).decode()
    assert action == f"{BASE_URL}/devidp/sso/post/"
    form = {name: _field(response.content, name) for name in ("SAMLRequest", "RelayState")}
    return client.post("/devidp/sso/post/", form)


def _sign_in(client, key: str):
    """Pick ``key`` at the dev IdP and post its signed answer to the ACS; return the ACS response."""
    picker = _picker(client)
    assert picker.status_code == 200
    form = {name: _field(picker.content, name) for name in ("SAMLRequest", "RelayState", "binding")}
    answer = client.post("/devidp/sso/continue/", {**form, "person": key})
    assert answer.status_code == 200, answer.content[:500]
    acs = re.search(rb'action="([^"]+)"', answer.content).group(1).decode()
    assert acs == f"{BASE_URL}/saml2/acs/"
    return client.post(
        "/saml2/acs/",
        {"SAMLResponse": _field(answer.content, "SAMLResponse"), "RelayState": _field(answer.content, "RelayState")},
    )


@pytest.mark.django_db
def test_sp_initiated_login_as_each_default_person(dev_site, client):
    for data in persons.DEFAULT_PERSONS:
        client.logout()
        response = _sign_in(client, data["key"])
        assert response.status_code == 302, response.content[:500]
        user = User._default_manager.get(email__iexact=data["attributes"]["mail"][0])
        assert user.first_name == data["attributes"]["givenName"][0]
        assert client.session["_auth_user_id"] == str(user.pk)
    alice = User._default_manager.get(email="alice@example.org")
    assert sorted(alice.groups.values_list("name", flat=True)) == ["Engineering"]
    assert ProvisioningEvent.objects.filter(kind="created").count() == 3


@pytest.mark.django_db
def test_http_redirect_binding_too(dev_site, client):
    with override_settings(SAML_DEFAULT_BINDING="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"):
        assert client.get("/saml2/login/").status_code == 302
        assert _sign_in(client, "carol").status_code == 302
    assert User._default_manager.get().last_name == "Nuñez"


@pytest.mark.django_db
def test_the_picker_lists_the_people_and_the_sp(dev_site, client):
    page = _picker(client).content.decode()
    assert f"{BASE_URL}/saml2/metadata/" in page
    for key in ("alice", "bob", "carol"):
        assert f'value="{key}"' in page


@pytest.mark.django_db
def test_edited_attributes_and_groups_are_what_is_sent(dev_site, client):
    response = client.post(
        "/devidp/people/bob/",
        {"name_id": "bob-new-0002", "attributes": "mail: robert@example.org\ngivenName: Robert", "groups": "sales"},
    )
    assert response.status_code == 302
    assert persons.COOKIE_NAME in response.cookies
    assert _sign_in(client, "bob").status_code == 302
    user = User._default_manager.get(saml_identities__subject="bob-new-0002")
    assert (user.email, user.first_name) == ("robert@example.org", "Robert")
    assert list(user.groups.values_list("name", flat=True)) == ["Sales"]
    # Forgetting the edits brings the configured bob back.
    client.post("/devidp/people-reset/")
    client.cookies.pop(persons.COOKIE_NAME, None)
    assert persons.find(None, "bob").name_id == persons.DEFAULT_PERSONS[1]["name_id"]


@pytest.mark.django_db
def test_a_bad_attribute_line_is_refused_with_the_form(dev_site, client):
    response = client.post("/devidp/people/bob/", {"name_id": "x", "attributes": "no colon here", "groups": ""})
    assert response.status_code == 400
    assert "Line 1" in response.content.decode()
    assert persons.COOKIE_NAME not in response.cookies


@pytest.mark.django_db
def test_a_denied_person_gets_no_account_and_one_event(dev_site, client):
    with override_settings(SAML_DEVIDP_PERSONS=[*persons.DEFAULT_PERSONS, DENIED]):
        response = _sign_in(client, "dave")
    assert response.status_code == 403
    assert not User._default_manager.filter(email="dave@partner.example").exists()
    event = ProvisioningEvent.objects.get()
    assert (event.kind, event.reason_code) == ("denied", "email_domain_not_allowed")


@pytest.mark.django_db
def test_single_logout_through_the_dev_idp(dev_site, client):
    assert _sign_in(client, "alice").status_code == 302
    start = client.get("/saml2/logout/")
    assert start.status_code == 302
    to_idp = urlparse(start["Location"])
    assert to_idp.path == "/devidp/slo/"
    answer = client.get(f"{to_idp.path}?{to_idp.query}")
    assert answer.status_code == 302, answer.content[:300]
    back = urlparse(answer["Location"])
    assert back.path == "/saml2/ls/"
    assert client.get(f"{back.path}?{back.query}").status_code in (200, 302)
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_request_the_idp_cannot_trust_gets_a_page(dev_site, client):
    response = client.get("/devidp/sso/redirect/", {"SAMLRequest": "bm90IHNhbWw="})
    assert response.status_code == 400
    assert "Start again" in response.content.decode()
    assert client.post("/devidp/sso/continue/", {"person": "alice"}).status_code == 400


@pytest.mark.django_db
def test_index_and_metadata(dev_site, client):
    page = client.get("/devidp/").content.decode()
    assert "The SP trusts this IdP" in page
    assert 'href="/saml2/login/"' in page
    metadata = client.get("/devidp/metadata/")
    assert metadata["Content-Type"] == "application/samlmetadata+xml"
    assert f'entityID="{BASE_URL}/devidp/metadata/"' in metadata.content.decode()


@pytest.mark.django_db
def test_index_at_another_host_sends_the_browser_to_the_configured_one(dev_site, client):
    with override_settings(ALLOWED_HOSTS=["testserver", "127.0.0.1"]):
        response = client.get("/devidp/", HTTP_HOST="127.0.0.1")
    assert (response.status_code, response["Location"]) == (302, f"{BASE_URL}/devidp/")


@pytest.mark.django_db
def test_index_says_whom_the_site_signed_in(dev_site, client):
    assert _sign_in(client, "bob").status_code == 302
    page = client.get("/devidp/").content.decode()
    bob = get_user_model()._default_manager.get(pk=client.session["_auth_user_id"])
    assert f"You are signed in to this site as <strong>{bob.get_username()}</strong>" in page
    assert 'href="/saml2/logout/"' in page


@pytest.mark.django_db
def test_every_page_is_404_with_debug_off(dev_site, client):
    with override_settings(DEBUG=False):
        for url in ("/devidp/", "/devidp/metadata/", "/devidp/sso/redirect/", "/devidp/people/alice/"):
            assert client.get(url).status_code == 404


def test_a_tampered_edits_cookie_counts_as_no_edits():
    edited = persons.from_dict({**persons.DEFAULT_PERSONS[0], "name_id": "changed"})
    cookie = persons.dump_edits({"alice": edited})
    assert persons.find(cookie, "alice").name_id == "changed"
    assert persons.find(cookie[:-2] + "xx", "alice").name_id == persons.DEFAULT_PERSONS[0]["name_id"]


def test_saml_attributes_use_uri_names_and_groups_as_is_member_of():
    alice = persons.from_dict(persons.DEFAULT_PERSONS[0])
    sent = alice.saml_attributes()
    assert sent["urn:oid:0.9.2342.19200300.100.1.3"] == ["alice@example.org"]
    assert sent["urn:oid:1.3.6.1.4.1.5923.1.5.1.1"] == ["engineering", "admins"]
    assert persons.parse_attributes("a: 1\n\na: 2\nb:3") == {"a": ["1", "2"], "b": ["3"]}
    with pytest.raises(ValueError):
        persons.parse_attributes(": nameless")


class TestChecks:
    installed = override_settings(INSTALLED_APPS=["saml_jit", "saml_jit.contrib.devidp"])

    def test_e001_debug_off(self, dev_site):
        with self.installed, override_settings(DEBUG=False):
            found = devidp_checks.check_debug()
        assert [(type(m), m.id) for m in found] == [(Error, devidp_checks.Codes.DEBUG_OFF)]
        with self.installed:
            assert devidp_checks.check_debug() == []

    def test_w001_not_trusted(self):
        saved = devidp_idp._site
        devidp_idp._site = None
        try:
            with self.installed:
                found = devidp_checks.check_trusted()
        finally:
            devidp_idp._site = saved
        assert [(type(m), m.id) for m in found] == [(Warning, devidp_checks.Codes.NOT_TRUSTED)]

    def test_silent_when_not_installed(self):
        with override_settings(DEBUG=False):
            assert devidp_checks.check_debug() == []
