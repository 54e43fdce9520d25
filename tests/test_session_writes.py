"""A login writes each session once, and still cycles any session key a browser already had.

``auth.login`` cycles the session key against session fixation; for a browser
with no stored session that would create an empty session row only to update
it a moment later (saml_jit.views._no_pointless_key_cycle). These tests hold
both halves: one write per session, and fixation protection wherever there
is a key to fixate.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import person

pytestmark = pytest.mark.django_db


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
