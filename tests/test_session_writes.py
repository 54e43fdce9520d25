"""A login writes each session once, and still cycles any session key a browser already had.

``auth.login`` cycles the session key against session fixation; for a browser
with no stored session that would create an empty session row only to update
it a moment later (:func:`saml_jit.sessions.sign_in`). These tests hold
all three parts: one write per session, fixation protection wherever there
is a key to fixate, and the one write failing after the committed login
answered 503 ``session_unavailable`` (never a bare 500), whatever the
session engine.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends import cache as cache_sessions
from django.contrib.sessions.backends import db as db_sessions
from django.contrib.sessions.models import Session
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from saml_jit.models import FederatedIdentity, ProvisioningEvent
from tests.conftest import person
from tests.test_faults import assert_complete_account, assert_fault
from tests.test_sessions import idp_settings

pytestmark = pytest.mark.django_db
User = get_user_model()


def _session_writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"].split()[0]
        for q in queries.captured_queries
        if q["sql"].startswith(("INSERT", "UPDATE", "DELETE")) and '"django_session"' in q["sql"]
    ]


def test_a_fresh_browser_gets_one_write_per_session(browser):
    request_id = browser.start_login()
    with CaptureQueriesContext(connection) as queries:
        response = browser.post_response(name_id="subject-fresh", in_response_to=request_id, attributes=person())
    assert response.status_code == 302
    # The login session: one INSERT with its data (no empty row first); the SAML session: one UPDATE.
    assert sorted(_session_writes(queries)) == ["INSERT", "UPDATE"]
    assert browser.client.session[SESSION_KEY]


def test_an_existing_session_is_still_cycled(browser):
    session = browser.client.session
    session["before_login"] = "kept"
    session.save()
    old_key = session.session_key
    browser.client.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert browser.login(name_id="subject-cycled").status_code == 302
    new_session = browser.client.session
    assert new_session.session_key != old_key
    assert new_session["before_login"] == "kept"  # cycled, not flushed: as auth.login does
    assert not Session.objects.filter(session_key=old_key).exists()


def test_a_planted_session_cookie_is_never_used(browser):
    planted = "attackerchosenkey0123456789abcdef"
    browser.client.cookies[settings.SESSION_COOKIE_NAME] = planted
    assert browser.login(name_id="subject-planted").status_code == 302
    session = browser.client.session
    assert session.session_key not in (None, planted)
    assert session[SESSION_KEY]
    assert not Session.objects.filter(session_key=planted).exists()


def test_logout_all_sessions_indexes_the_session_written_once(browser, settings):
    idp_settings(settings, LOGOUT_ALL_SESSIONS=True)
    request_id = browser.start_login()
    with CaptureQueriesContext(connection) as queries:
        response = browser.post_response(name_id="subject-indexed", in_response_to=request_id, attributes=person())
    assert response.status_code == 302
    assert sorted(_session_writes(queries)) == ["INSERT", "UPDATE"]
    from saml_jit.models import SamlSession

    assert SamlSession.objects.get().session_key == browser.client.session.session_key


def _failing_first_write(store: type, error: Exception, key: str = SESSION_KEY):
    """``store.create`` failing for the session holding ``key`` (the SAML session was created earlier)."""
    original = store.create

    def create(self):
        if key in self._get_session():
            raise error
        return original(self)

    return create


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh-browser", "cycled-session"])
def test_the_session_write_failing_after_the_commit_is_503(browser, monkeypatch, caplog, fresh):
    if not fresh:
        session = browser.client.session
        session["before_login"] = "kept"
        session.save()
        browser.client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    # A fresh session is created holding the login; a cycled one, holding what it held before.
    failing = _failing_first_write(
        db_sessions.SessionStore, OperationalError("gone"), SESSION_KEY if fresh else "before_login"
    )
    monkeypatch.setattr(db_sessions.SessionStore, "create", failing)
    response = browser.login(attributes=person())
    # Fresh: the write fails in SessionMiddleware (Django logs SessionInterrupted); cycled: inside auth.login.
    assert_fault(response, "session_unavailable", caplog, django_logged=fresh)
    assert_complete_account()
    assert SESSION_KEY not in browser.client.session


def test_a_cache_session_store_failing_at_the_write_is_503(browser, settings, monkeypatch, caplog):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    monkeypatch.setattr(
        cache_sessions.SessionStore,
        "create",
        _failing_first_write(cache_sessions.SessionStore, ConnectionError("cache unreachable")),
    )
    response = browser.login(attributes=person())
    assert_fault(response, "session_unavailable", caplog, django_logged=True)
    assert FederatedIdentity.objects.count() == 1


def test_another_users_session_flushed_at_login_fails_its_write_with_503(browser, monkeypatch, caplog):
    # auth.login flushes a session that belongs to somebody else: the new one is written after the view.
    other = User.objects.create_user(**{User.USERNAME_FIELD: "someone-else@example.org"})
    request_id = browser.start_login()
    browser.client.force_login(other)
    monkeypatch.setattr(
        db_sessions.SessionStore, "create", _failing_first_write(db_sessions.SessionStore, OperationalError("gone"))
    )
    response = browser.post_response(name_id="subject-flushed", in_response_to=request_id, attributes=person())
    assert_fault(response, "session_unavailable", caplog, django_logged=True)
    identity = FederatedIdentity.objects.get()
    assert identity.user != other
    assert ProvisioningEvent.objects.get().user == identity.user
