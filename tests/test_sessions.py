"""Sessions that follow the IdP: SessionNotOnOrAfter and MAX_SESSION_AGE, ForceAuthn freshness, logout everywhere.

End to end through the real login, ACS and single-logout views with real
signed responses, on both crypto backends; the pure rules
(:mod:`saml_jit.saml.authn`) below them without a database.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from saml2 import samlp
from saml2.s_utils import decode_base64_and_inflate

from saml_jit import sessions
from saml_jit.checks import Codes, check_settings
from saml_jit.conf import REFEDS_MFA, app_settings
from saml_jit.exceptions import Rejected
from saml_jit.models import EventKind, ProvisioningEvent, SamlSession
from saml_jit.saml import authn as rules
from saml_jit.saml.data import Authn
from tests.conftest import Browser, person
from tests.federation import IDP_A
from tests.test_logout import POST, REDIRECT, logout_request, send

User = get_user_model()
EXPIRY = "saml_jit.middleware.GrantExpiryMiddleware"
SUBJECT = "subject-alice-0001"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def idp_settings(settings, **values) -> None:
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: values}}


def sent_request(response) -> samlp.AuthnRequest:
    """The AuthnRequest a login view sent (HTTP-Redirect or the POST form)."""
    if response.status_code == 302:
        xml = decode_base64_and_inflate(parse_qs(urlparse(response["Location"]).query)["SAMLRequest"][0])
    else:
        assert response.status_code == 200, response.content[:500]
        xml = base64.b64decode(re.search(rb'name="SAMLRequest" value="([^"]+)"', response.content).group(1))
    return samlp.authn_request_from_string(xml)


def answer(browser: Browser, request_id: str | None, **spec):
    """IdP A's signed answer to ``request_id``, posted to the ACS."""
    return browser.post_response(IDP_A, name_id=SUBJECT, attributes=person(), in_response_to=request_id, **spec)


def signed_in_user(browser: Browser):
    return browser.client.session.get("_auth_user_id")


def expiry_of(browser: Browser) -> datetime:
    return browser.client.session.get_expiry_date()


def assert_close(moment: datetime, expected: datetime, slack: int = 15) -> None:
    assert abs((moment - expected).total_seconds()) <= slack, (moment, expected)


# --------------------------------------------------------------------------
# The session's lifetime and what it remembers


@pytest.mark.django_db
def test_session_not_on_or_after_caps_the_session(crypto_backend, browser):
    response = browser.login(name_id=SUBJECT, session_lifetime=3600)
    assert response.status_code == 302, response.content[:2000]
    assert_close(expiry_of(browser), datetime.now(timezone.utc) + timedelta(seconds=3600))


@pytest.mark.django_db
def test_max_session_age_caps_it_further(crypto_backend, browser, settings):
    idp_settings(settings, MAX_SESSION_AGE=600)
    assert browser.login(name_id=SUBJECT, session_lifetime=3600).status_code == 302
    assert_close(expiry_of(browser), datetime.now(timezone.utc) + timedelta(seconds=600))


@pytest.mark.django_db
def test_session_not_on_or_after_wins_when_it_is_earlier(crypto_backend, browser, settings):
    idp_settings(settings, MAX_SESSION_AGE=7200)
    assert browser.login(name_id=SUBJECT, session_lifetime=900).status_code == 302
    assert_close(expiry_of(browser), datetime.now(timezone.utc) + timedelta(seconds=900))


@pytest.mark.django_db
def test_without_either_django_decides(crypto_backend, browser):
    assert browser.login(name_id=SUBJECT, session_lifetime=None).status_code == 302
    age = timedelta(seconds=django_settings.SESSION_COOKIE_AGE)
    assert_close(expiry_of(browser), datetime.now(timezone.utc) + age)


@pytest.mark.django_db
def test_the_session_remembers_its_idp_assertion_and_authentication(crypto_backend, browser):
    instant = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=120)
    response = browser.login(name_id=SUBJECT, assertion_id="_a-session-1", authn_instant=instant)
    assert response.status_code == 302, response.content[:2000]
    session = browser.client.session
    assert session[sessions.IDP] == IDP_A.entity_id
    assert session[sessions.ASSERTION_ID] == "_a-session-1"
    assert datetime.fromisoformat(session[sessions.AUTHN_INSTANT]) == instant
    assert session[sessions.AUTHN_CONTEXT] == "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@pytest.mark.django_db
def test_an_idp_session_already_over_signs_nobody_in(crypto_backend, browser):
    response = browser.login(name_id=SUBJECT, session_lifetime=-60)
    assert response.status_code == 400
    assert b"<code>expired</code>" in response.content
    assert signed_in_user(browser) is None
    assert not User.objects.exists()
    assert [(e.kind, e.reason_code) for e in ProvisioningEvent.objects.all()] == [(EventKind.REJECTED, "expired")]


def with_expiry_middleware(settings) -> None:
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, EXPIRY)
    settings.MIDDLEWARE = middleware


@pytest.mark.django_db
def test_the_middleware_ends_a_sign_in_past_its_end(crypto_backend, browser, settings):
    with_expiry_middleware(settings)
    assert browser.login(name_id=SUBJECT, session_lifetime=3600).status_code == 302
    session = browser.client.session
    assert_close(datetime.fromisoformat(session[sessions.SESSION_END]), datetime.now(timezone.utc) + timedelta(hours=1))
    browser.client.get("/")
    assert signed_in_user(browser) is not None
    session[sessions.SESSION_END] = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    session.save()
    browser.client.get("/")
    assert signed_in_user(browser) is None


@pytest.mark.django_db
def test_browser_close_sessions_stay_browser_sessions(crypto_backend, browser, settings):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    assert browser.login(name_id=SUBJECT, session_lifetime=3600).status_code == 302
    session = browser.client.session
    assert session.get_expire_at_browser_close()  # no persistent cookie made of it
    assert sessions.SESSION_END in session


# --------------------------------------------------------------------------
# ForceAuthn: the AuthnInstant must be fresh (SDP-SP13)


def step_up(browser: Browser):
    response = browser.client.get("/saml2/step-up/", {"idp": IDP_A.entity_id})
    request = sent_request(response)
    assert request.force_authn == "true"
    return request


@pytest.mark.django_db
def test_force_authn_refuses_an_old_authn_instant(crypto_backend, browser):
    request = step_up(browser)
    response = answer(browser, request.id, authn_instant=-3600)
    assert response.status_code == 400, response.content[:2000]
    assert b"<code>stale_authn</code>" in response.content
    assert signed_in_user(browser) is None
    assert [(e.kind, e.reason_code) for e in ProvisioningEvent.objects.all()] == [(EventKind.REJECTED, "stale_authn")]


@pytest.mark.django_db
def test_force_authn_accepts_a_fresh_one_within_the_idps_age(crypto_backend, browser, settings):
    idp_settings(settings, FORCE_AUTHN_MAX_AGE=900)
    response = answer(browser, step_up(browser).id, authn_instant=-600)
    assert response.status_code == 302, response.content[:2000]
    assert signed_in_user(browser) is not None


@pytest.mark.django_db
def test_an_old_authn_instant_is_fine_when_force_authn_was_not_asked(crypto_backend, browser):
    response = browser.login(name_id=SUBJECT, authn_instant=-4 * 3600)  # single sign-on on an older IdP session
    assert response.status_code == 302, response.content[:2000]


@pytest.mark.django_db
def test_force_authn_from_the_sp_configuration_is_held_too(crypto_backend, browser, settings):
    config = {**django_settings.SAML_CONFIG}
    config["service"] = {"sp": {**config["service"]["sp"], "force_authn": True}}
    settings.SAML_CONFIG = config
    from saml_jit.saml.config import refresh

    refresh()
    try:
        request = sent_request(browser.client.get("/saml2/login/", {"idp": IDP_A.entity_id}))
        assert request.force_authn == "true"
        response = answer(browser, request.id, authn_instant=-3600)
        assert b"<code>stale_authn</code>" in response.content
    finally:
        settings.SAML_CONFIG = django_settings.SAML_CONFIG
        refresh()


# --------------------------------------------------------------------------
# IdP-initiated single logout ends every session from that IdP


def signed_in_browsers(count: int) -> list[Browser]:
    browsers = [Browser(Client()) for _ in range(count)]
    for browser in browsers:
        assert browser.login(name_id=SUBJECT, attributes=person()).status_code == 302
    return browsers


@pytest.mark.django_db
@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_logout_all_sessions_ends_every_session_from_the_idp(crypto_backend, settings, binding):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    first, second, third = signed_in_browsers(3)
    assert SamlSession.objects.filter(idp_entity_id=IDP_A.entity_id).count() == 3
    response = send(first, binding, logout_request(binding))
    assert response.status_code in (200, 302), response.content[:2000]
    assert [signed_in_user(b) for b in (first, second, third)] == [None, None, None]
    [event] = ProvisioningEvent.objects.filter(kind=EventKind.LOGOUT)
    assert event.diff == {"binding": binding, "initiated_by": "idp", "local": False, "sessions_ended": 3}
    assert not SamlSession.objects.exists()


def logout_status(response) -> str:
    """The innermost StatusCode of the LogoutResponse the SP sent back (HTTP-Redirect or the POST form)."""
    if response.status_code == 302:
        xml = decode_base64_and_inflate(parse_qs(urlparse(response["Location"]).query)["SAMLResponse"][0])
    else:
        encoded = re.search(rb'name="SAMLResponse" value="([^"]+)"', response.content).group(1)
        xml = base64.b64decode(encoded)
    code = samlp.logout_response_from_string(xml).status.status_code
    while code.status_code is not None:
        code = code.status_code
    return code.value


@pytest.mark.django_db
@pytest.mark.parametrize("binding", [REDIRECT, POST])
def test_a_signed_request_through_another_browser_ends_the_persons_sessions(crypto_backend, settings, binding):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    first, second = signed_in_browsers(2)
    person_id = int(signed_in_user(first))
    bystander = Browser(Client())  # signed in as nobody here: the IdP's page reached another browser
    response = send(bystander, binding, logout_request(binding))
    assert logout_status(response) == "urn:oasis:names:tc:SAML:2.0:status:Success"
    assert [signed_in_user(first), signed_in_user(second)] == [None, None]
    [event] = ProvisioningEvent.objects.filter(kind=EventKind.LOGOUT)
    assert event.user_id == person_id and event.subject == SUBJECT
    assert event.diff == {
        "binding": binding,
        "initiated_by": "idp",
        "local": False,
        "session_here": False,
        "sessions_ended": 2,
    }


@pytest.mark.django_db
def test_an_unsigned_request_through_another_browser_ends_nothing(crypto_backend, settings):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True, REQUIRE_SIGNED_LOGOUT=False)
    first, second = signed_in_browsers(2)
    response = send(Browser(Client()), REDIRECT, logout_request(REDIRECT, sign=False))
    assert logout_status(response) == "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
    assert signed_in_user(first) is not None and signed_in_user(second) is not None
    assert not ProvisioningEvent.objects.filter(kind=EventKind.LOGOUT).exists()


@pytest.mark.django_db
def test_a_request_naming_nobody_known_ends_nothing(crypto_backend, settings):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    [first] = signed_in_browsers(1)
    response = send(Browser(Client()), POST, logout_request(POST, name_id="someone-else"))
    assert logout_status(response) == "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
    assert signed_in_user(first) is not None
    assert not ProvisioningEvent.objects.filter(kind=EventKind.LOGOUT).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("saml_middleware", ["saml_jit", "djangosaml2"])
def test_a_fresh_browsers_session_is_indexed_under_its_final_key(settings, saml_middleware):
    """Indexed after Django saved the new session (saml_jit's middleware), or by saving it first (djangosaml2's)."""
    if saml_middleware == "djangosaml2":
        settings.MIDDLEWARE = ["djangosaml2.middleware.SamlSessionMiddleware", *settings.MIDDLEWARE[1:]]
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    [browser] = signed_in_browsers(1)
    [row] = SamlSession.objects.all()
    assert row.session_key == browser.client.session.session_key


@pytest.mark.django_db
def test_by_default_only_the_browser_that_got_the_request_is_signed_out(crypto_backend):
    first, second = signed_in_browsers(2)
    assert not SamlSession.objects.exists()  # no index kept: a returning login costs no query for it
    send(first, REDIRECT, logout_request(REDIRECT))
    assert signed_in_user(first) is None
    assert signed_in_user(second) is not None


@pytest.mark.django_db
def test_sessions_from_another_idp_are_left_alone(crypto_backend, settings):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    first, second = signed_in_browsers(2)
    SamlSession.objects.filter(session_key=second.client.session.session_key).update(idp_entity_id="https://other/")
    send(first, REDIRECT, logout_request(REDIRECT))
    assert signed_in_user(first) is None
    assert signed_in_user(second) is not None


@pytest.mark.django_db
def test_logout_all_sessions_with_cache_sessions(crypto_backend, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    first, second = signed_in_browsers(2)
    send(first, POST, logout_request(POST))
    assert [signed_in_user(first), signed_in_user(second)] == [None, None]


@pytest.mark.django_db
def test_index_rows_of_ended_sessions_are_pruned(settings):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    signed_in_browsers(2)
    SamlSession.objects.filter(pk=SamlSession.objects.first().pk).update(
        expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)
    )
    out = StringIO()
    call_command("saml_jit_prune", "--dry-run", stdout=out)
    assert "1 session index row(s) of ended sessions would be deleted" in out.getvalue()
    assert SamlSession.objects.count() == 2
    call_command("saml_jit_prune", stdout=out)
    assert "1 session index row(s) of ended sessions deleted" in out.getvalue()
    assert SamlSession.objects.count() == 1


def returning_login_queries(name_id: str) -> int:
    browser = Browser(Client())
    data = browser.answered_login(name_id)
    with CaptureQueriesContext(connection) as queries:
        assert browser.client.post("/saml2/acs/", data).status_code == 302
    return len(queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_the_session_index_costs_one_query_and_only_when_on(settings):
    returning_login_queries("budget-1")
    default = returning_login_queries("budget-1")
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    indexed = returning_login_queries("budget-1")
    assert indexed - default == 1  # the index row's INSERT


# --------------------------------------------------------------------------
# Pure rules


def test_session_expiry_is_the_earliest_and_says_why():
    authn = Authn(session_not_on_or_after=NOW + timedelta(hours=1))
    assert rules.session_expiry(authn, None, 14 * 86400, NOW) == (NOW + timedelta(hours=1), ("SessionNotOnOrAfter",))
    assert rules.session_expiry(authn, 600, 14 * 86400, NOW) == (NOW + timedelta(seconds=600), ("MAX_SESSION_AGE",))
    assert rules.session_expiry(Authn(), None, 60, NOW) == (NOW + timedelta(seconds=60), ("SESSION_COOKIE_AGE",))


def test_force_authn_freshness_counts_the_clock_skew():
    rules.check_fresh(Authn(instant=NOW - timedelta(seconds=350)), 300, 60, NOW)
    with pytest.raises(Rejected) as refused:
        rules.check_fresh(Authn(instant=NOW - timedelta(seconds=361)), 300, 60, NOW)
    assert refused.value.code == "stale_authn"
    with pytest.raises(Rejected):
        rules.check_fresh(Authn(instant=None), 300, 60, NOW)


def test_a_session_end_in_the_past_is_refused():
    rules.check_session_end(Authn(session_not_on_or_after=NOW + timedelta(seconds=1)), NOW)
    with pytest.raises(Rejected) as refused:
        rules.check_session_end(Authn(session_not_on_or_after=NOW), NOW)
    assert refused.value.code == "expired"


def test_remembered_requests_are_bounded_and_used_once():
    session: dict = {}
    for number in range(rules.REMEMBERED_REQUESTS + 3):
        rules.remember_request(session, f"id-{number}", rules.Asked(force_authn=True))
    assert len(session[rules.REQUESTS_KEY]) == rules.REMEMBERED_REQUESTS
    assert rules.asked_for(session, "id-0") == rules.Asked()  # the oldest were forgotten
    last = f"id-{rules.REMEMBERED_REQUESTS + 2}"
    assert rules.asked_for(session, last).force_authn
    assert rules.asked_for(session, last) == rules.Asked()  # once
    assert rules.asked_for(session, None) == rules.Asked()  # IdP-initiated: nothing was asked


def test_session_settings_are_checked(settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"MAX_SESSION_AGE": 0, "FORCE_AUTHN_MAX_AGE": -1}}}
    [error] = [m for m in check_settings() if m.id == Codes.SESSION_SETTING_INVALID]
    assert "MAX_SESSION_AGE, FORCE_AUTHN_MAX_AGE" in error.msg and error.hint


def test_logout_all_sessions_with_signed_cookies_warns(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"LOGOUT_ALL_SESSIONS": True}}}
    [warning] = [m for m in check_settings() if m.id == Codes.LOGOUT_ALL_SESSIONS_UNSUPPORTED]
    assert IDP_A.entity_id in warning.msg and warning.hint


def test_defaults():
    idp = app_settings.for_idp(IDP_A.entity_id)
    assert (idp.MAX_SESSION_AGE, idp.FORCE_AUTHN_MAX_AGE, idp.LOGOUT_ALL_SESSIONS) == (None, 300, False)
    assert idp.REQUIRED_AUTHN_CONTEXT is None and not idp.PRIVILEGES_REQUIRE_MFA
    assert REFEDS_MFA in idp.MFA_AUTHN_CONTEXTS
