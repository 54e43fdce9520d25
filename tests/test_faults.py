"""Infrastructure faults during a login: 503 with the error page and a reference, never 400, never a bare 500.

What a client receives, fault by fault:

* the database failing before or inside the login's transaction: 503
  ``service_unavailable``, nothing written (the transaction rolls back), one
  ERROR line with the reference the page shows;
* the database or the session store failing once the login has committed
  (signing in, saving either session): 503 ``session_unavailable`` ("you may
  already be signed in"), the account complete — where djangosaml2's
  middleware and Django's answer 400;
* the replay cache unreachable (``REPLAY_STORE = "cache"``) while the
  database is up: 503 ``replay_store_unavailable`` with its ``rejected``
  event (the reference is the event's), the login refused;
* a cache-backed session store unreachable: 503 ``service_unavailable``.

The PostgreSQL tests terminate the app's own backend with
``pg_terminate_backend`` (from a second connection) in the middle of a real
login; they never stop the shared server.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import re
import threading
import time
import urllib.parse

import pytest
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends import db as db_sessions
from django.contrib.sessions.backends.base import UpdateError
from django.db import OperationalError, connection, connections
from django.test import RequestFactory
from saml2 import samlp
from saml2.s_utils import decode_base64_and_inflate

from saml_jit import refusals
from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.provisioning import accounts, grants
from saml_jit.provisioning import login as provisioning_login
from tests.conftest import person
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, SP_ENTITY_ID

User = get_user_model()
DEAD_REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
STOCK_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "djangosaml2.middleware.SamlSessionMiddleware",
]
FAULT_REFERENCE = re.compile(rb"Reference: <code>([0-9a-f]{8})</code>")

postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL")


def assert_fault(response, code: str, caplog, *, django_logged: bool = False) -> str:
    """A 503 page with a fresh reference, logged once at ERROR (one line, the reference on it).

    ``django_logged``: Django itself logged the exception it turned into a 400
    before saml_jit's middleware could answer 503 instead.
    """
    assert response.status_code == 503, response.content[:2000]
    assert response["Retry-After"] == str(refusals.RETRY_AFTER)
    assert f"<code>{code}</code>".encode() in response.content
    assert b"Try again in a moment" in response.content
    match = FAULT_REFERENCE.search(response.content)
    assert match, response.content[:2000]
    reference = match.group(1).decode()
    ours = [r for r in caplog.records if r.name.startswith("saml_jit") and r.levelno >= logging.ERROR]
    assert [reference in r.getMessage() for r in ours] == [True], [r.getMessage() for r in ours]
    assert not ours[0].exc_info
    # Not repeated by Django's "Service Unavailable: /path" line.
    assert django_logged or not [r for r in caplog.records if r.name.startswith("django.")]
    return reference


def assert_nothing_written():
    assert not User.objects.exists()
    assert not FederatedIdentity.objects.exists()
    assert not ProvisioningEvent.objects.exists()


def assert_complete_account():
    user = User.objects.get()
    assert FederatedIdentity.objects.get().user == user
    assert list(ProvisioningEvent.objects.values_list("kind", "user")) == [(EventKind.CREATED, user.pk)]


def operational_error(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")


# -- the database -----------------------------------------------------------------


@pytest.mark.django_db
def test_database_failing_inside_the_login_transaction(browser, monkeypatch, caplog):
    monkeypatch.setattr(provisioning_login, "_apply", operational_error)
    response = browser.login(attributes=person())
    assert_fault(response, "service_unavailable", caplog)
    assert_nothing_written()


@pytest.mark.django_db
def test_database_failing_while_signing_in_after_the_commit(browser, monkeypatch, caplog):
    monkeypatch.setattr(auth, "login", operational_error)
    response = browser.login(attributes=person())
    assert_fault(response, "session_unavailable", caplog)
    assert_complete_account()


START = ("/saml2/login/", {"idp": IDP_A.entity_id, "next": "/"})


@pytest.mark.django_db
def test_database_failing_when_a_login_starts(client, monkeypatch, caplog):
    # Saving the AuthnRequest's state (a new SAML session) fails in the middleware.
    monkeypatch.setattr(db_sessions.SessionStore, "create", operational_error)
    assert_fault(client.get(*START), "service_unavailable", caplog)


@pytest.mark.django_db
def test_database_failing_to_load_the_session(client, monkeypatch, caplog):
    client.cookies["sessionid"] = "a" * 32
    monkeypatch.setattr(db_sessions.SessionStore, "load", operational_error)
    assert_fault(client.get(*START), "service_unavailable", caplog)


# -- the sessions, after a committed login ------------------------------------------


@pytest.fixture
def failing_save(monkeypatch):
    """Make the session holding ``key`` fail to save (as a database that went away does: UpdateError)."""

    def fail_for(key: str) -> None:
        original = db_sessions.SessionStore.save

        def save(self, must_create=False):
            if not must_create and key in self._get_session():
                raise UpdateError
            return original(self, must_create)

        monkeypatch.setattr(db_sessions.SessionStore, "save", save)

    return fail_for


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["_saml2_subject_id", "_auth_user_id"], ids=["saml-session", "django-session"])
def test_session_failing_to_save_after_a_committed_login_is_503_not_400(browser, failing_save, caplog, key):
    failing_save(key)
    response = browser.login(attributes=person())
    assert_fault(response, "session_unavailable", caplog, django_logged=key == "_auth_user_id")
    assert_complete_account()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["_saml2_subject_id", "_auth_user_id"], ids=["saml-session", "django-session"])
def test_stock_middleware_answers_the_same_fault_with_400(browser, failing_save, settings, key):
    # djangosaml2's SuspiciousOperation, Django's SessionInterrupted: "your request was bad".
    settings.MIDDLEWARE = STOCK_MIDDLEWARE
    failing_save(key)
    response = browser.login(attributes=person())
    assert response.status_code == 400
    assert_complete_account()


# -- the caches ---------------------------------------------------------------------


@pytest.mark.django_db
def test_replay_cache_unreachable_refuses_the_login_with_503_and_its_event(browser, settings, caplog):
    settings.CACHES = {**settings.CACHES, "replay": DEAD_REDIS}
    settings.SAML_JIT = {"REPLAY_STORE": "cache", "REPLAY_CACHE": "replay"}
    response = browser.login(attributes=person())
    assert response.status_code == 503, response.content[:2000]
    assert b"<code>replay_store_unavailable</code>" in response.content
    [event] = ProvisioningEvent.objects.all()
    assert (event.kind, event.reason_code) == (EventKind.REJECTED, "replay_store_unavailable")
    assert f"<code>#{event.pk}</code>".encode() in response.content
    assert not User.objects.exists()
    [line] = [r for r in caplog.records if r.name.startswith("saml_jit") and r.levelno >= logging.ERROR]
    assert f"event={event.pk}" in line.getMessage()


@pytest.mark.django_db
def test_session_cache_unreachable_is_503(browser, settings, caplog):
    settings.CACHES = {**settings.CACHES, "sessions": DEAD_REDIS}
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.SESSION_CACHE_ALIAS = "sessions"
    assert_fault(browser.client.get(*START), "service_unavailable", caplog)


# -- elsewhere ----------------------------------------------------------------------


@pytest.mark.django_db
def test_grant_expiry_middleware_fails_closed_with_503(client, settings, monkeypatch, caplog):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "saml_jit.middleware.GrantExpiryMiddleware"]
    client.force_login(User.objects.create_user(**{User.USERNAME_FIELD: "bob@example.org"}))
    monkeypatch.setattr(grants, "next_expiry", operational_error)
    assert_fault(client.get("/"), "service_unavailable", caplog)


@pytest.mark.django_db
def test_database_failing_during_a_logout_ends_nothing_and_records_nothing(client, monkeypatch, caplog):
    user = User.objects.create_user(**{User.USERNAME_FIELD: "bob@example.org"})
    client.force_login(user)
    monkeypatch.setattr(db_sessions.SessionStore, "delete", operational_error)
    assert_fault(client.get("/saml2/logout/"), "service_unavailable", caplog)
    monkeypatch.undo()
    assert client.session["_auth_user_id"] == str(user.pk)
    assert not ProvisioningEvent.objects.filter(kind=EventKind.LOGOUT).exists()


def test_fault_page_falls_back_to_text_when_the_template_fails(settings, caplog):
    settings.SAML_JIT = {"ERROR_TEMPLATE": "no/such/template.html"}
    response = refusals.fault(RequestFactory().get("/saml2/acs/"), OperationalError("gone"))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert b"Reference: " in response.content


def test_fault_log_line_names_the_error_but_never_a_value(caplog):
    from django.db import IntegrityError

    refusals.fault(RequestFactory().get("/"), IntegrityError("Key (email)=(alice@example.org) already exists."))
    [line] = [r.getMessage() for r in caplog.records if r.name == "saml_jit.refusals"]
    assert "IntegrityError" in line and "alice" not in line


@pytest.mark.django_db
def test_unknown_idp_at_login_is_one_line_without_a_traceback(client, caplog):
    caplog.set_level(logging.DEBUG, logger="djangosaml2")
    response = client.get("/saml2/login/", {"idp": "https://nobody.example/idp"})
    assert response.status_code == 403
    assert b"<code>unknown_idp</code>" in response.content
    records = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "django.request"]
    assert [r.name for r in records] == ["saml_jit.views"]
    assert not any(r.exc_info for r in caplog.records)


# -- PostgreSQL: the app's backend terminated mid-login ----------------------------------


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """``pg_terminate_backend`` from a second connection; wait until the backend is gone."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    return
                time.sleep(0.02)
        raise AssertionError(f"backend {pid} still alive")
    finally:
        other.close()


@postgresql
@pytest.mark.django_db(transaction=True)
def test_backend_terminated_inside_the_login_transaction_writes_nothing(browser, monkeypatch, caplog):
    original = accounts.create_user

    def create_then_lose_the_database(*args, **kwargs):
        user = original(*args, **kwargs)  # the INSERT is in; the transaction is not committed
        terminate(_backend_pid())
        return user

    monkeypatch.setattr(accounts, "create_user", create_then_lose_the_database)
    response = browser.login(attributes=person())
    connection.close()  # the test client keeps the request's (dead) connection
    assert_fault(response, "service_unavailable", caplog)
    assert_nothing_written()


@postgresql
@pytest.mark.django_db(transaction=True)
def test_backend_terminated_after_the_commit_is_503_and_the_account_complete(browser, caplog):
    def lose_the_database(**kwargs):
        terminate(_backend_pid())

    user_logged_in.connect(lose_the_database, dispatch_uid="test_faults")
    try:
        response = browser.login(attributes=person())
    finally:
        user_logged_in.disconnect(dispatch_uid="test_faults")
    connection.close()
    # Django's SessionMiddleware failed to save (and logged its SessionInterrupted); the answer is 503.
    assert_fault(response, "session_unavailable", caplog, django_logged=True)
    assert_complete_account()


# -- PostgreSQL: two app servers while their backends are terminated ----------------------

NODE_APPLICATION = "saml_jit_fault_node"


def _node_login(browser, start, acs, subject: str) -> tuple[str, int, bytes]:
    """One login across two nodes: (where it ended, status, body)."""
    query = urllib.parse.urlencode({"idp": IDP_A.entity_id, "next": "/"})
    status, headers, content = browser.request(start, "GET", f"/saml2/login/?{query}")
    if status == 302:
        encoded = urllib.parse.parse_qs(urllib.parse.urlparse(headers["Location"]).query)["SAMLRequest"][0]
        request_id = samlp.authn_request_from_string(decode_base64_and_inflate(encoded)).id
    elif status == 200:
        encoded = re.search(rb'name="SAMLRequest" value="([^"]+)"', content).group(1)
        request_id = samlp.authn_request_from_string(base64.b64decode(encoded)).id
    else:
        return "login", status, content
    data = IDP_A.post_data(
        sp_entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        friendly_names=FRIENDLY_NAMES,
        in_response_to=request_id,
        name_id=subject,
        attributes=person(email=f"{subject}@example.org", uid=[subject]),
    )
    status, _, content = browser.request(acs, "POST", "/saml2/acs/", data)
    return "acs", status, content


def _terminator(stop: threading.Event, kills: list[int]) -> None:
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            while not stop.wait(0.5):
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                    [NODE_APPLICATION],
                )
                kills.append(cursor.fetchone()[0])
    finally:
        other.close()


def _logins_while_terminating(nodes, workers: int = 6, rounds: int = 4) -> tuple[list, list[int]]:
    from tests.test_multinode import HttpBrowser

    results: list = []
    stop, kills = threading.Event(), []
    terminator = threading.Thread(target=_terminator, args=(stop, kills))

    def worker(index: int) -> None:
        for round_ in range(rounds):
            start, acs = nodes[(index + round_) % 2], nodes[(index + round_ + 1) % 2]
            subject = f"subject-fault-{index}-{round_}"
            results.append((subject, *_node_login(HttpBrowser(), start, acs, subject)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    terminator.start()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        stop.set()
        terminator.join(timeout=10)
    return results, kills


@postgresql
@pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="needs gunicorn (requirements.txt)")
def test_two_nodes_answer_terminated_backends_with_503_and_never_half_provision(transactional_db, monkeypatch):
    from tests import test_multinode

    url = test_multinode._database_url()
    monkeypatch.setattr(test_multinode, "_database_url", lambda: f"{url}?application_name={NODE_APPLICATION}")
    with test_multinode.two_nodes() as nodes:
        results, kills = _logins_while_terminating(nodes)
    summary = sorted({(where, status, _reason(content)) for _, where, status, content in results})
    assert sum(kills) > 0 and len(results) == 24, (kills, summary)
    for _, where, status, content in results:
        # Never 400 (the person's fault) nor 500; 200 would be a POST-binding AuthnRequest form.
        assert status in (200, 302, 503), (where, status, content[:1000])
        if status == 503:
            assert _reason(content) in ("service_unavailable", "session_unavailable"), content[:1000]
            assert FAULT_REFERENCE.search(content) and b"Try again in a moment" in content
    # No account half-written: each user has its identity and its one created event.
    for user in User.objects.all():
        assert FederatedIdentity.objects.filter(user=user).count() == 1
        assert ProvisioningEvent.objects.filter(user=user, kind=EventKind.CREATED).count() == 1
    # A login answered 302, or 503 "you may already be signed in", committed.
    committed = {subject for subject, where, status, content in results if where == "acs" and status == 302}
    committed |= {subject for subject, _, _, content in results if _reason(content) == "session_unavailable"}
    assert committed <= set(FederatedIdentity.objects.values_list("subject", flat=True)), summary


def _reason(content: bytes) -> str:
    match = re.search(rb"Reason: <code>([a-z_]+)</code>", content)
    return match.group(1).decode() if match else ""
