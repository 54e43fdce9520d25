"""Events: the single writer, append-only rows, and the signals it sends.

Signals are sent on commit. Inside a ``django_db`` test the request runs in
the test's transaction, so the on-commit callbacks are captured around each
request and run when the ``with`` block exits (before the assertions). The
receiver-that-raises test uses ``transactional_db`` so the callbacks run
during the request, exactly as in production.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from saml_jit import events, signals
from saml_jit.models import EventKind, EventSource, FederatedIdentity, ProvisioningEvent
from tests.conftest import person
from tests.federation import IDP_A, IDP_B, ROGUE_KEY

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"

ALL_SIGNALS = {
    "user_provisioned": signals.user_provisioned,
    "user_updated": signals.user_updated,
    "login_denied": signals.login_denied,
    "assertion_rejected": signals.assertion_rejected,
}


def make_user(username="carol", email="carol@example.org", **extra):
    if EMAIL_KEYED:
        return User.objects.create_user(email=email, **extra)
    return User.objects.create_user(username=username, email=email, **extra)


class Recorder:
    """Connects to every saml_jit signal and remembers each call."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self._receivers = []

    def connect(self):
        for name, signal in ALL_SIGNALS.items():

            def receiver(sender, _name=name, **kwargs):
                self.calls.append((_name, {"sender": sender, **kwargs}))

            self._receivers.append((signal, receiver))
            signal.connect(receiver, weak=False)

    def disconnect(self):
        for signal, receiver in self._receivers:
            signal.disconnect(receiver)

    def names(self):
        return [name for name, _ in self.calls]

    def only(self, name):
        assert self.names() == [name], self.names()
        return self.calls[0][1]


@pytest.fixture
def received():
    recorder = Recorder()
    recorder.connect()
    yield recorder
    recorder.disconnect()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs what was scheduled on commit when the block exits."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def relogin(browser, **kwargs):
    browser.client.logout()
    return browser.login(**kwargs)


def assert_signal_kwargs(kwargs, *, kind, user):
    event = kwargs["event"]
    assert isinstance(event, ProvisioningEvent)
    assert event.pk is not None
    assert event.kind == kind
    assert kwargs["sender"] == kind
    assert kwargs["user"] == user
    assert isinstance(kwargs["request"], HttpRequest)
    assert kwargs["request"].path == "/saml2/acs/"


# --------------------------------------------------------------------------
# events.record


@pytest.mark.django_db
def test_record_writes_one_row_with_username_snapshot_that_survives_deletion():
    user = make_user()
    event = events.record(EventKind.LOGIN, user=user, idp_entity_id=IDP_A.entity_id, subject="s-1", assertion_id="_a1")

    assert ProvisioningEvent.objects.count() == 1
    row = ProvisioningEvent.objects.get()
    assert row.pk == event.pk
    assert (row.kind, row.source, row.user, row.username) == (
        EventKind.LOGIN,
        EventSource.SAML,
        user,
        user.get_username(),
    )
    assert (row.idp_entity_id, row.subject, row.assertion_id) == (IDP_A.entity_id, "s-1", "_a1")
    assert row.ip_address is None and row.user_agent == ""

    snapshot = user.get_username()
    user.delete()
    row.refresh_from_db()
    assert row.user is None
    assert row.user_id is None
    assert row.username == snapshot
    assert ProvisioningEvent.objects.count() == 1


@pytest.mark.django_db
def test_record_takes_ip_and_user_agent_from_request(rf):
    request = rf.post("/saml2/acs/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="x" * 600)
    event = events.record(EventKind.REJECTED, request=request, reason_code="expired")
    event.refresh_from_db()
    assert event.ip_address == "203.0.113.9"
    assert event.user_agent == "x" * 512  # cut to the column, not an error


@pytest.mark.django_db
def test_record_without_user_keeps_given_username():
    event = events.record(EventKind.DENIED, username="ghost", reason_code="creation_disabled")
    event.refresh_from_db()
    assert (event.user, event.username) == (None, "ghost")


@pytest.mark.django_db
def test_events_are_append_only():
    event = events.record(EventKind.LOGIN, idp_entity_id=IDP_A.entity_id, subject="s-1", message="original")

    event.message = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    fresh = ProvisioningEvent.objects.get()
    with pytest.raises(ValueError):
        fresh.save(update_fields=["message"])
    assert ProvisioningEvent.objects.get().message == "original"
    assert ProvisioningEvent.objects.count() == 1


# --------------------------------------------------------------------------
# Signals through real logins


@pytest.mark.django_db
def test_created_sends_user_provisioned_once(browser, received, committed):
    with committed():
        response = browser.login()
    assert response.status_code == 302

    kwargs = received.only("user_provisioned")
    user = User.objects.get()
    assert_signal_kwargs(kwargs, kind=EventKind.CREATED, user=user)
    assert kwargs["event"] == ProvisioningEvent.objects.get()


@pytest.mark.django_db
def test_linked_sends_user_provisioned_once(browser, received, committed, settings):
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"LINK_BY_EMAIL": True}}}
    user = make_user("alice", "alice@example.org")

    with committed():
        response = browser.login(idp=IDP_B, name_id="b-alice")
    assert response.status_code == 302, response.content[:1000]

    kwargs = received.only("user_provisioned")
    assert_signal_kwargs(kwargs, kind=EventKind.LINKED, user=user)
    assert FederatedIdentity.objects.get().user == user


@pytest.mark.django_db
def test_updated_sends_user_updated_once(browser, received, committed):
    browser.login()
    received.calls.clear()  # the first login's callbacks were never run (not captured)

    with committed():
        response = relogin(browser, attributes=person(surname="Pleasance"))
    assert response.status_code == 302

    kwargs = received.only("user_updated")
    assert_signal_kwargs(kwargs, kind=EventKind.UPDATED, user=User.objects.get())
    assert kwargs["event"].diff == {"last_name": ["Liddell", "Pleasance"]}


@pytest.mark.django_db
def test_plain_login_sends_no_signal(browser, received, committed):
    browser.login()
    with committed():
        relogin(browser)
    assert received.calls == []
    assert ProvisioningEvent.objects.latest("id").kind == EventKind.LOGIN


@pytest.mark.django_db
def test_denied_sends_login_denied_once(browser, received, committed, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    with committed():
        response = browser.login()
    assert response.status_code == 403

    kwargs = received.only("login_denied")
    assert_signal_kwargs(kwargs, kind=EventKind.DENIED, user=None)
    assert kwargs["event"].reason_code == "creation_disabled"


@pytest.mark.django_db
def test_denied_inactive_sends_login_denied_with_user(browser, received, committed, settings):
    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    browser.login()
    with committed():
        browser.login()
    kwargs = received.only("login_denied")
    assert_signal_kwargs(kwargs, kind=EventKind.DENIED, user=User.objects.get())
    assert kwargs["event"].reason_code == "pending_approval"


@pytest.mark.django_db
def test_rejected_sends_assertion_rejected_once(browser, received, committed):
    with committed():
        response = browser.login(signing_key_file=ROGUE_KEY)
    assert response.status_code == 400

    kwargs = received.only("assertion_rejected")
    assert_signal_kwargs(kwargs, kind=EventKind.REJECTED, user=None)
    assert kwargs["event"].reason_code == "bad_signature"


@pytest.mark.django_db
def test_no_signal_before_commit(browser, received):
    # Nothing captured, nothing committed: receivers must not have run yet
    # (a receiver must never see an event that may still be rolled back).
    browser.login()
    assert ProvisioningEvent.objects.count() == 1
    assert received.calls == []


@pytest.mark.django_db(transaction=True)
def test_raising_receiver_does_not_break_login(browser, caplog):
    calls = []

    def broken(sender, **kwargs):
        calls.append(kwargs["event"].pk)
        raise RuntimeError("receiver bug")

    signals.user_provisioned.connect(broken, weak=False)
    try:
        response = browser.login()
    finally:
        signals.user_provisioned.disconnect(broken)

    assert response.status_code == 302, response.content[:1000]
    user = User.objects.get()
    assert browser.client.session["_auth_user_id"] == str(user.pk)
    assert calls == [ProvisioningEvent.objects.get().pk]
    assert "receiver" in caplog.text and "failed" in caplog.text
    assert "receiver bug" in caplog.text  # logged with its traceback


@pytest.mark.django_db(transaction=True)
def test_signal_sent_after_commit_in_production_mode(browser, received):
    # No test transaction: on_commit callbacks run at the real COMMIT.
    response = browser.login()
    assert response.status_code == 302
    kwargs = received.only("user_provisioned")
    assert kwargs["event"].kind == EventKind.CREATED


def test_every_declared_signal_is_documented_and_sent_by_a_test():
    """The README's signal table lists exactly the declared signals; each is received in some test."""
    import re
    from pathlib import Path

    from django.dispatch import Signal

    declared = {name for name, value in vars(signals).items() if isinstance(value, Signal)}
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\| `saml_jit\.signals\.(\w+)` \|", readme))
    assert declared == documented
    tests = Path(__file__).resolve().parent
    received_somewhere = {
        name for name in declared for path in tests.glob("test_*.py") if f"signals.{name}.connect" in path.read_text()
    }
    assert received_somewhere | set(ALL_SIGNALS) == declared
