"""The pages a person lands on: what to do next after a refusal, and a GET on the ACS."""

from __future__ import annotations

import logging
import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils.html import escape

from saml_jit import refusals
from saml_jit.messages import ERROR_MESSAGES
from saml_jit.models import EventKind, ProvisioningEvent
from tests.federation import ACS_URL, IDP_A, SP_ENTITY_ID

pytestmark = pytest.mark.django_db

LINK = re.compile(r'<a href="([^"]*)"[^>]*>([^<]+)</a>')


def links(response) -> dict[str, str]:
    """The page's links, text -> target."""
    return {text: unescape(href) for href, text in LINK.findall(response.content.decode())}


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


# ----------------------------------------------------------------------------- the error page


def test_a_denial_offers_a_new_login_at_the_same_idp_and_home(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    settings.LOGIN_REDIRECT_URL = "/welcome/"
    response = browser.login()
    assert response.status_code == 403
    found = links(response)
    assert urlparse(found["Try again"]).path == reverse("saml2_login")
    assert query(found["Try again"]) == {"idp": [IDP_A.entity_id]}
    assert found["Home"] == "/welcome/"
    event = ProvisioningEvent.objects.get()
    assert f"<code>#{event.pk}</code>" in response.content.decode()  # the reference stays
    assert "Choose Try again to start a new sign-in" in response.content.decode()


def test_try_again_really_starts_a_login_at_that_idp(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    again = links(browser.login())["Try again"]
    started = browser.client.get(again)
    assert started.status_code in (200, 302)
    target = started["Location"] if started.status_code == 302 else started.content.decode()
    assert IDP_A.base_url.split("//")[1] in target


def test_an_unknown_issuer_gets_the_plain_login_page(browser):
    # A response claiming an issuer the metadata does not know: no ?idp= (it would be refused as unknown_idp).
    response = browser.post_response(
        name_id="s", attributes={}, in_response_to=None, issuer="https://stranger.example/idp"
    )
    assert response.status_code >= 400
    assert links(response)["Try again"] == reverse("saml2_login")


def test_home_url_setting_wins_and_accepts_a_url_name(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False, "HOME_URL": "saml2_metadata"}
    assert links(browser.login())["Home"] == reverse("saml2_metadata")
    settings.SAML_JIT = {"CREATE_USERS": False, "HOME_URL": "no-such-url-name"}
    browser.client.cookies.clear()
    assert links(browser.login())["Home"] == "/"  # never a broken page


def test_without_login_redirect_url_home_is_the_root(rf, settings):
    settings.LOGIN_REDIRECT_URL = None
    assert refusals.home_url() == "/"


def test_a_pending_account_gets_no_try_again(browser, settings):
    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    response = browser.login()
    assert response.status_code == 403
    assert "Try again" not in links(response) and "Home" in links(response)


def test_a_fault_page_offers_both(client, monkeypatch):
    from django.db import OperationalError

    def failing(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("saml_jit.views.LoginView.get", failing)
    response = client.get(reverse("saml2_login"))
    assert response.status_code == 503
    assert set(links(response)) == {"Try again", "Home"}


def test_the_page_is_translatable():
    from tests.test_messages import catalogue_msgids

    ids = catalogue_msgids()
    for msgid in (
        "Try again",
        "Home",
        "Choose Try again to start a new sign-in, or Home to go back to the site.",
        "This address receives sign-in responses from your identity provider; "
        "your browser sends them here on its own during a sign-in.",
    ):
        assert msgid in ids


def test_a_refusal_is_logged_once(browser, settings, caplog):
    settings.SAML_JIT = {"CREATE_USERS": False}
    caplog.set_level(logging.INFO)
    assert browser.login().status_code == 403
    lines = [r for r in caplog.records if r.name.startswith(("saml_jit", "django.request"))]
    assert [r.name for r in lines] == ["saml_jit.refusals"], [r.getMessage() for r in lines]


# ----------------------------------------------------------------------------- GET on the ACS


def test_a_bare_get_on_the_acs_explains_the_address_and_records_nothing(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get(reverse("saml2_acs"))
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "receives sign-in responses from your identity provider" in response.content.decode()
    assert links(response) == {"Sign in": reverse("saml2_login"), "Home": "/"}
    assert ProvisioningEvent.objects.count() == 0  # a navigation, not bad input


def test_a_saml_response_by_get_is_bad_input_with_one_event(client):
    data = IDP_A.post_data(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, name_id="subject-alice-0001", attributes={})
    response = client.get(reverse("saml2_acs"), data)
    assert response.status_code == 405 and response["Allow"] == "POST"
    event = ProvisioningEvent.objects.get()
    assert (event.kind, event.reason_code, event.idp_entity_id) == (
        EventKind.REJECTED,
        "response_in_query",
        IDP_A.entity_id,
    )
    page = response.content.decode()
    assert escape(str(ERROR_MESSAGES["response_in_query"])) in page and f"#{event.pk}" in page
    assert query(links(response)["Try again"]) == {"idp": [IDP_A.entity_id]}
    assert client.session.get("_auth_user_id") is None


def test_garbage_by_get_is_still_one_event_and_no_500(client):
    response = client.get(reverse("saml2_acs"), {"SAMLResponse": "%%% not base64 <x>"})
    assert response.status_code == 405
    assert ProvisioningEvent.objects.get().idp_entity_id == ""


def request_lines(caplog) -> list[str]:
    return [r.name for r in caplog.records if r.name.startswith(("saml_jit", "django."))]


def test_a_login_is_logged_once(browser, caplog):
    caplog.set_level(logging.INFO)
    assert browser.login().status_code == 302
    assert request_lines(caplog) == ["saml_jit.events"]  # "saml_jit event N kind=created idp=…"


def test_a_bare_get_on_the_acs_is_one_line_and_a_response_by_get_one_too(client, caplog):
    caplog.set_level(logging.INFO)
    client.get(reverse("saml2_acs"))
    assert request_lines(caplog) == ["django.request"]  # Method Not Allowed: /saml2/acs/
    caplog.clear()
    client.get(reverse("saml2_acs"), {"SAMLResponse": "bm90IGEgcmVzcG9uc2U="})
    assert request_lines(caplog) == ["saml_jit.refusals"]
