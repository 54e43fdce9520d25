"""``saml_jit.provisioning.provision`` called directly: create, update, races.

The race tests are deterministic. Two simultaneous first logins of one
identity both read "no identity yet" and both try to create it; the unique
constraints make the later INSERT fail. Here the winner is a real earlier
``provision()`` call, and the loser's first attempt reads the database as it
was *before* the winner committed (its reads are made stale by hiding the
rows from the managers it reads through), so its INSERT hits a genuine
``IntegrityError`` from the database. Savepoints make this work inside the
test transaction; a threaded version of the same race runs on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection

from saml_jit.mapping import AssertionData
from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.models.prepared import PreparedRead
from saml_jit.provisioning import ATTEMPTS, provision
from saml_jit.provisioning import login as provisioning
from tests.federation import IDP_A, IDP_B

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def assertion(
    *,
    idp=IDP_A,
    subject="subject-alice-0001",
    email="alice@example.org",
    given_name="Alice",
    surname="Liddell",
    assertion_id=None,
    **extra,
) -> AssertionData:
    attributes = {"mail": (email,), "givenName": (given_name,), "sn": (surname,)}
    attributes.update({name: tuple(values) for name, values in extra.items()})
    return AssertionData(
        idp_entity_id=idp.entity_id,
        name_id=subject,
        name_id_format=PERSISTENT,
        assertion_id=assertion_id or f"_{uuid.uuid4().hex}",
        attributes=attributes,
    )


def kinds():
    return list(ProvisioningEvent.objects.order_by("id").values_list("kind", flat=True))


@contextmanager
def stale_reads():
    """Reads as a transaction that started before the winner committed sees them.

    Identities and users are hidden from every read made through their
    managers and through saml_jit's prepared reads (compiled once, they never
    go through a manager again); writes (``create``, ``Model.save`` through the base manager)
    are untouched and reach the real constraints.
    """
    identities = FederatedIdentity.objects
    users = User._default_manager
    assert users is not User._base_manager  # saves must not be affected

    def hidden(manager):
        return lambda *args, **kwargs: manager.none()

    with (
        mock.patch.object(identities, "select_related", hidden(identities)),
        mock.patch.object(identities, "select_for_update", hidden(identities)),
        mock.patch.object(identities, "filter", hidden(identities)),
        mock.patch.object(users, "filter", hidden(users)),
        mock.patch.object(users, "alias", lambda *args, **kwargs: users.none().alias(*args, **kwargs)),
        mock.patch.object(PreparedRead, "fetch", lambda *args, **kwargs: []),
    ):
        yield


class RacingApply:
    """Wraps ``provisioning._apply``; the first attempt plays the loser of a race."""

    def __init__(self, first_attempt):
        self.real = provisioning._apply
        self.first_attempt = first_attempt
        self.calls = 0
        self.errors: list[IntegrityError] = []

    def __call__(self, ctx, profile):
        self.calls += 1
        if self.calls > 1:
            return self.real(ctx, profile)
        try:
            return self.first_attempt(self.real, ctx, profile)
        except IntegrityError as exc:
            self.errors.append(exc)
            raise


# --------------------------------------------------------------------------
# Create, update, login, deny


@pytest.mark.django_db
def test_provision_creates_user_identity_and_event():
    outcome = provision(assertion(assertion_id="_assertion-1"))

    assert outcome.kind == EventKind.CREATED
    assert outcome.denial is None
    user = User.objects.get()
    assert outcome.user == user
    assert (user.email, user.first_name, user.last_name) == ("alice@example.org", "Alice", "Liddell")
    assert not user.has_usable_password()
    identity = FederatedIdentity.objects.get()
    assert (identity.user, identity.idp_entity_id, identity.subject) == (user, IDP_A.entity_id, "subject-alice-0001")
    assert identity.last_assertion_id == "_assertion-1"
    assert identity.name_id_format == PERSISTENT
    event = ProvisioningEvent.objects.get()
    assert outcome.event == event
    assert event.kind == EventKind.CREATED
    assert event.ip_address is None  # no request
    assert event.diff["email"] == [None, "alice@example.org"]
    if not EMAIL_KEYED:
        assert user.username == "alice"


@pytest.mark.django_db
def test_provision_updates_only_changed_always_fields(settings):
    settings.SAML_JIT = {"SYNC": {"first_name": "on_create"}}
    provision(assertion())
    outcome = provision(assertion(given_name="Alicia", surname="Pleasance", assertion_id="_assertion-2"))

    assert outcome.kind == EventKind.UPDATED
    user = User.objects.get()
    assert (user.first_name, user.last_name) == ("Alice", "Pleasance")
    assert outcome.event.diff == {"last_name": ["Liddell", "Pleasance"]}
    assert FederatedIdentity.objects.get().last_assertion_id == "_assertion-2"
    assert kinds() == [EventKind.CREATED, EventKind.UPDATED]


@pytest.mark.django_db
def test_provision_unchanged_is_login():
    first = provision(assertion())
    outcome = provision(assertion(assertion_id="_assertion-2"))
    assert outcome.kind == EventKind.LOGIN
    assert outcome.user == first.user
    assert outcome.event.diff == {}
    assert kinds() == [EventKind.CREATED, EventKind.LOGIN]


@pytest.mark.django_db
def test_provision_denial_returns_outcome_not_exception(settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    outcome = provision(assertion())
    assert outcome.user is None
    assert outcome.kind == EventKind.DENIED
    assert outcome.denial.code == "creation_disabled"
    assert outcome.event.reason_code == "creation_disabled"
    assert not User.objects.exists()
    assert kinds() == [EventKind.DENIED]


@pytest.mark.django_db
def test_same_subject_from_two_idps_is_two_accounts():
    a = provision(assertion(idp=IDP_A, subject="same"))
    b = provision(assertion(idp=IDP_B, subject="same", email="bob@example.net"))
    assert a.kind == b.kind == EventKind.CREATED
    assert a.user != b.user
    assert FederatedIdentity.objects.count() == 2


# --------------------------------------------------------------------------
# Races and retries


@pytest.mark.django_db
def test_concurrent_first_login_gives_one_user(monkeypatch):
    winner = provision(assertion(assertion_id="_winner"))  # the other request, committed first

    def loser_first_attempt(real, ctx, profile):
        with stale_reads():  # it read before the winner committed
            return real(ctx, profile)

    racing = RacingApply(loser_first_attempt)
    monkeypatch.setattr(provisioning, "_apply", racing)
    loser = provision(assertion(assertion_id="_loser"))

    assert racing.calls == 2
    assert len(racing.errors) == 1  # a real IntegrityError from the database
    assert loser.denial is None
    assert loser.kind == EventKind.LOGIN
    assert loser.user == winner.user
    assert User.objects.count() == 1
    assert FederatedIdentity.objects.count() == 1
    assert FederatedIdentity.objects.get().last_assertion_id == "_loser"
    assert kinds() == [EventKind.CREATED, EventKind.LOGIN]
    assert ProvisioningEvent.objects.filter(kind=EventKind.CREATED).count() == 1


@pytest.mark.django_db
def test_concurrent_first_login_with_changed_attributes_updates_winner(monkeypatch):
    winner = provision(assertion(assertion_id="_winner"))

    def loser_first_attempt(real, ctx, profile):
        with stale_reads():
            return real(ctx, profile)

    monkeypatch.setattr(provisioning, "_apply", RacingApply(loser_first_attempt))
    loser = provision(assertion(surname="Pleasance", assertion_id="_loser"))

    assert loser.kind == EventKind.UPDATED
    assert loser.user == winner.user
    assert loser.event.diff == {"last_name": ["Liddell", "Pleasance"]}
    assert User.objects.count() == 1
    assert kinds() == [EventKind.CREATED, EventKind.UPDATED]


@pytest.mark.django_db
def test_failed_attempt_leaves_no_trace(monkeypatch):
    # The first attempt writes everything, then the commit "fails": its user,
    # identity and event are rolled back, and the retry starts clean.
    def write_then_fail(real, ctx, profile):
        real(ctx, profile)
        assert User.objects.count() == 1 and ProvisioningEvent.objects.count() == 1
        raise IntegrityError("simulated")

    racing = RacingApply(write_then_fail)
    monkeypatch.setattr(provisioning, "_apply", racing)
    outcome = provision(assertion())

    assert racing.calls == 2
    assert outcome.kind == EventKind.CREATED
    assert User.objects.count() == 1
    assert FederatedIdentity.objects.count() == 1
    assert kinds() == [EventKind.CREATED]
    if not EMAIL_KEYED:
        assert outcome.user.username == "alice"  # not alice2: the first try left nothing


@pytest.mark.django_db
def test_persistent_integrity_error_is_a_conflict_denial(monkeypatch):
    calls = []

    def always_conflicts(ctx, profile):
        calls.append(profile.subject)
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(provisioning, "_apply", always_conflicts)
    outcome = provision(assertion(assertion_id="_conflicted"))  # must not raise

    assert len(calls) == ATTEMPTS == 3
    assert outcome.user is None
    assert outcome.kind == EventKind.DENIED
    assert outcome.denial.code == "conflict"
    event = ProvisioningEvent.objects.get()
    assert (event.kind, event.reason_code) == (EventKind.DENIED, "conflict")
    assert (event.subject, event.assertion_id) == ("subject-alice-0001", "_conflicted")
    assert not User.objects.exists()
    assert not FederatedIdentity.objects.exists()


@pytest.mark.django_db
def test_conflict_denial_through_the_acs_is_a_403(browser, monkeypatch):
    def always_conflicts(ctx, profile):
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(provisioning, "_apply", always_conflicts)
    response = browser.login()
    assert response.status_code == 403
    assert b"<code>conflict</code>" in response.content
    assert kinds() == [EventKind.DENIED]


@pytest.mark.postgresql
@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need a real server (DATABASE_URL)")
@pytest.mark.django_db(transaction=True)
def test_threaded_first_logins_on_postgresql(monkeypatch, caplog):
    caplog.set_level("INFO", logger="saml_jit.provisioning")
    # Both threads are held at the point of creation until both got there,
    # so both have read "no identity" before either writes.
    barrier = threading.Barrier(2, timeout=10)
    real_create = provisioning._create
    waited = threading.local()

    def create_together(*args, **kwargs):
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()
        return real_create(*args, **kwargs)

    monkeypatch.setattr(provisioning, "_create", create_together)
    outcomes, errors = [], []

    def login(n):
        try:
            outcomes.append(provision(assertion(assertion_id=f"_thread-{n}")))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=login, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(o.kind for o in outcomes) == [EventKind.CREATED, EventKind.LOGIN]
    assert outcomes[0].user.pk == outcomes[1].user.pk
    assert User.objects.count() == 1
    assert FederatedIdentity.objects.count() == 1
    assert sorted(kinds()) == [EventKind.CREATED, EventKind.LOGIN]
    assert "retrying" in caplog.text  # the loser really hit the unique constraint
