"""The dormancy sweep (``provisioning.dormancy``, ``saml_jit_lifecycle sweep``), its admin filter and action.

Accounts are made by real JIT logins (``provision``), then aged by moving
their timestamps back with ``.update()``: no clock patching.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from importlib import import_module
from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from saml_jit import lifecycle as rules
from saml_jit.admin.dormancy import EvidenceAgeFilter, suspend_dormant
from saml_jit.mapping import AssertionData
from saml_jit.models import AccountLifecycle, EventKind, FederatedIdentity, Grant, GrantKind, ProvisioningEvent
from saml_jit.provisioning import dormancy, lifecycle, provision
from tests.conftest import person
from tests.federation import IDP_A, IDP_B

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
A, B = IDP_A.entity_id, IDP_B.entity_id
#: Dormancy after 90 days at IdP A; off at IdP B.
DORMANT_A = {"IDPS": {A: {"DORMANT_AFTER": 90}}}
#: Staff and a privileged group (expiring grants) from "admins", a plain membership from "eng".
GROUPS = {
    "STAFF_GROUPS": ["admins"],
    "GROUP_MAP": {"eng": ["Engineering"], "ops": ["Ops"]},
    "PRIVILEGED_GROUPS": ["Ops"],
    "CREATE_GROUPS": True,
}
CHANGELIST = "admin:saml_jit_accountlifecycle_changelist"


def assertion(name: str, idp: str = A, groups: tuple[str, ...] = ()) -> AssertionData:
    attributes = {"mail": (f"{name}@example.org",), "givenName": (name.title(),), "sn": ("Doe",), "uid": (name,)}
    if groups:
        attributes["isMemberOf"] = groups
    return AssertionData(
        idp_entity_id=idp,
        name_id=f"subject-{name}",
        name_id_format=PERSISTENT,
        assertion_id=f"_{uuid.uuid4().hex}",
        attributes=attributes,
    )


def jit(name: str, idp: str = A, groups: tuple[str, ...] = ()):
    """A JIT account made by a first login from ``idp``."""
    outcome = provision(assertion(name, idp, groups))
    assert outcome.user is not None, outcome.denial
    return outcome.user


def age(user, days: float, *, idp: str | None = None, since: float | None = None) -> None:
    """Move the user's identities (those of ``idp``, or all) and lifecycle state ``days`` into the past."""
    then = timezone.now() - timedelta(days=days)
    identities = FederatedIdentity.objects.filter(user=user)
    if idp:
        identities = identities.filter(idp_entity_id=idp)
    identities.update(bound_at=then, first_asserted_at=then, last_asserted_at=then)
    since_then = timezone.now() - timedelta(days=days if since is None else since)
    AccountLifecycle.objects.filter(user=user).update(since=since_then)


def dormant_jit(name: str, days: float = 100, **kwargs):
    user = jit(name, **kwargs)
    age(user, days)
    return user


def state_of(user) -> tuple[str, str, bool]:
    row = AccountLifecycle.objects.get(user=user)
    user.refresh_from_db()
    return row.state, row.source, user.is_active


def suspended_events():
    return list(ProvisioningEvent.objects.filter(kind=EventKind.SUSPENDED).order_by("id"))


def run(*args: str) -> str:
    out = StringIO()
    call_command("saml_jit_lifecycle", "sweep", *args, stdout=out)
    return out.getvalue()


def session_user(engine: str, session_key: str):
    request = HttpRequest()
    request.session = import_module(engine).SessionStore(session_key)
    return get_user(request)


@pytest.fixture
def dormant_a(settings):
    settings.SAML_JIT = dict(DORMANT_A)
    return settings


# ----------------------------------------------------------------------------- who is dormant


@pytest.mark.django_db
def test_jit_account_never_seen_again_after_its_first_login_is_swept(dormant_a):
    user = dormant_jit("alice")
    (result,) = dormancy.sweep()
    assert (result.idp_entity_id, result.considered, result.suspended, result.skipped_fresh) == (A, 1, 1, 0)
    assert state_of(user) == (rules.SUSPENDED, rules.DORMANCY, False)
    assert AccountLifecycle.objects.get(user=user).reason_code == "dormant"


@pytest.mark.django_db
def test_evidence_inside_the_window_is_not_dormant(dormant_a):
    recent, old = dormant_jit("recent", days=89), dormant_jit("old", days=91)
    assert dormancy.sweep()[0].suspended == 1
    assert state_of(recent)[0] == rules.ACTIVE
    assert state_of(old)[0] == rules.SUSPENDED


@pytest.mark.django_db
def test_a_fresh_assertion_from_a_second_idp_keeps_the_account(dormant_a):
    user = dormant_jit("alice")
    now = timezone.now()
    FederatedIdentity.objects.create(
        user=user, idp_entity_id=B, subject="subject-alice-b", first_asserted_at=now, last_asserted_at=now
    )
    assert dormancy.sweep()[0].considered == 0
    assert state_of(user)[0] == rules.ACTIVE


@pytest.mark.django_db
def test_old_evidence_from_every_idp_is_dormant_even_where_one_idp_has_it_off(dormant_a):
    user = dormant_jit("alice")
    FederatedIdentity.objects.create(user=user, idp_entity_id=B, subject="subject-alice-b")
    age(user, 100)  # both identities, old
    assert dormancy.sweep()[0].suspended == 1


@pytest.mark.django_db
def test_a_recent_scim_touch_keeps_the_account(dormant_a):
    user = dormant_jit("alice")
    lifecycle.touch_scim(user)
    assert dormancy.sweep()[0].considered == 0
    AccountLifecycle.objects.filter(user=user).update(last_scim_at=timezone.now() - timedelta(days=91))
    assert dormancy.sweep()[0].suspended == 1


@pytest.mark.django_db
def test_a_just_reactivated_account_is_not_dormant(dormant_a):
    user = dormant_jit("alice")
    lifecycle.transition(user, rules.ADMIN_SUSPEND)
    lifecycle.transition(user, rules.ADMIN_REACTIVATE)  # since: now; the evidence is still 100 days old
    assert dormancy.sweep()[0].considered == 0
    assert state_of(user)[0] == rules.ACTIVE


@pytest.mark.django_db
def test_scim_pre_provisioned_identity_counts_from_its_binding(dormant_a):
    user = dormant_jit("alice")
    FederatedIdentity.objects.filter(user=user).update(
        first_asserted_at=None, last_asserted_at=None, bound_at=timezone.now() - timedelta(days=5)
    )
    assert dormancy.sweep()[0].considered == 0
    FederatedIdentity.objects.filter(user=user).update(bound_at=timezone.now() - timedelta(days=100))
    assert dormancy.sweep()[0].suspended == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("trigger", "state"),
    [
        (rules.ADMIN_SUSPEND, rules.SUSPENDED),
        (rules.ADMIN_DEPROVISION, rules.DEPROVISIONED),
        (rules.SCIM_DEACTIVATE, rules.DEPROVISIONED),
    ],
)
def test_non_active_accounts_are_left_alone(dormant_a, trigger, state):
    user = dormant_jit("alice")
    lifecycle.transition(user, trigger)
    age(user, 100)
    assert dormancy.sweep()[0].considered == 0
    assert state_of(user)[0] == state
    assert not ProvisioningEvent.objects.filter(source="dormancy").exists()


@pytest.mark.django_db
def test_pending_accounts_are_left_alone(settings):
    settings.SAML_JIT = {**DORMANT_A, "NEW_USERS_ACTIVE": False}
    provision(assertion("alice"))
    user = User.objects.get()
    assert state_of(user)[0] == rules.PENDING
    age(user, 100)
    assert dormancy.sweep()[0].considered == 0
    assert state_of(user)[0] == rules.PENDING


@pytest.mark.django_db
def test_an_idp_with_dormancy_off_is_not_swept(dormant_a):
    user = dormant_jit("bob", idp=B)
    assert [r.idp_entity_id for r in dormancy.sweep()] == [A]
    assert state_of(user)[0] == rules.ACTIVE


@pytest.mark.django_db
def test_off_by_default(settings):
    settings.SAML_JIT = {}
    dormant_jit("alice", days=1000)
    assert dormancy.sweep() == []
    assert "Nothing to do" in run()


@pytest.mark.django_db
def test_global_dormant_after_applies_to_every_idp_without_an_override(settings):
    settings.SAML_JIT = {"DORMANT_AFTER": timedelta(days=30), "IDPS": {B: {"DORMANT_AFTER": None}}}
    alice, bob = dormant_jit("alice", days=40), dormant_jit("bob", days=40, idp=B)
    assert [(r.idp_entity_id, r.days, r.suspended) for r in dormancy.sweep()] == [(A, 30, 1)]
    assert state_of(alice)[0] == rules.SUSPENDED and state_of(bob)[0] == rules.ACTIVE


@pytest.mark.django_db
def test_the_paged_rule_and_the_one_query_rule_agree(dormant_a):
    accounts = [dormant_jit("old"), dormant_jit("recent", days=10), dormant_jit("other-idp", idp=B)]
    lifecycle.touch_scim(dormant_jit("touched"))
    lifecycle.transition(dormant_jit("gone"), rules.ADMIN_DEPROVISION)
    now = timezone.now()
    FederatedIdentity.objects.create(user=accounts[2], idp_entity_id=A, subject="x", bound_at=now - timedelta(days=99))
    cutoff = now - timedelta(days=90)
    every = list(AccountLifecycle.objects.values_list("user_id", flat=True))
    one_query = sorted(dormancy.dormant(A, cutoff).values_list("user_id", flat=True))
    assert dormancy.dormant_among(A, cutoff, every) == one_query == sorted([accounts[0].pk, accounts[2].pk])


@pytest.mark.django_db
def test_accounts_without_an_identity_are_never_swept(dormant_a):
    local = User.objects.create_user(**{User.USERNAME_FIELD: "local@example.org" if EMAIL_KEYED else "local"})
    lifecycle.lifecycle_row(local)
    AccountLifecycle.objects.filter(user=local).update(since=timezone.now() - timedelta(days=1000))
    assert dormancy.sweep()[0].considered == 0


# ----------------------------------------------------------------------------- what a suspension does


@pytest.mark.django_db
@pytest.mark.parametrize("engine", [f"django.contrib.sessions.backends.{name}" for name in ("db", "cached_db")])
def test_sweep_ends_database_sessions(dormant_a, engine):
    dormant_a.SESSION_ENGINE = engine
    user = dormant_jit("alice")
    other = jit("bob")
    kept = Client()
    kept.force_login(other)
    browsers = [Client(), Client()]
    for browser_client in browsers:
        browser_client.force_login(user)
    keys = [browser_client.session.session_key for browser_client in browsers]
    dormancy.sweep()
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert all(session_user(engine, key).is_anonymous for key in keys)  # cached_db: its cache entries went too
    assert all(browser_client.get("/").wsgi_request.user.is_anonymous for browser_client in browsers)
    assert kept.get("/").wsgi_request.user == other
    (event,) = suspended_events()
    assert event.diff["sessions_ended"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "engine", ["django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.signed_cookies"]
)
def test_sweep_ends_sessions_it_cannot_list_through_the_auth_hash(dormant_a, engine):
    dormant_a.SESSION_ENGINE = engine
    user = dormant_jit("alice")
    browser_client = Client()
    browser_client.force_login(user)
    key = browser_client.session.session_key
    assert session_user(engine, key) == user
    dormancy.sweep()
    assert session_user(engine, key).is_anonymous


@pytest.mark.django_db
def test_sweep_drops_privileges_and_keeps_plain_memberships(settings):
    settings.SAML_JIT = {**DORMANT_A, **GROUPS}
    user = jit("alice", groups=("admins", "eng", "ops"))
    manual = Group.objects.create(name="by-hand")
    user.groups.add(manual)
    assert user.is_staff and Grant.objects.count() == 3
    age(user, 100)
    dormancy.sweep()
    user.refresh_from_db()
    assert not user.is_staff
    assert sorted(user.groups.values_list("name", flat=True)) == ["Engineering", "by-hand"]
    assert list(Grant.objects.values_list("kind", "group__name")) == [(GrantKind.GROUP, "Engineering")]
    (event,) = suspended_events()
    assert event.diff["grants_removed"] == 2


@pytest.mark.django_db
def test_one_suspended_event_per_account(dormant_a):
    users = [dormant_jit(name) for name in ("alice", "bob", "carol")]
    dormancy.sweep(batch=2)
    found = suspended_events()
    assert sorted(event.user_id for event in found) == sorted(user.pk for user in users)
    for event in found:
        assert (event.source, event.reason_code, event.idp_entity_id, event.actor) == ("dormancy", "dormant", A, "")
        assert event.diff["state"] == [rules.ACTIVE, rules.SUSPENDED]
        assert "90 days" in event.message
    dormancy.sweep()
    assert len(suspended_events()) == 3  # a second sweep finds nobody


@pytest.mark.django_db
def test_sweep_pages_through_many_accounts(dormant_a, caplog):
    caplog.set_level("INFO", logger="saml_jit.provisioning.dormancy")
    for n in range(7):
        dormant_jit(f"user{n}")
    (result,) = dormancy.sweep(batch=3)
    assert (result.considered, result.suspended) == (7, 7)
    batches = [r.getMessage() for r in caplog.records if "batch=" in r.getMessage()]
    assert len(batches) == 3 and "batch=1 suspended=1" in batches[-1]
    assert AccountLifecycle.objects.filter(state=rules.SUSPENDED).count() == 7


@pytest.mark.django_db
def test_logs_carry_ids_and_counts_only(dormant_a, caplog):
    caplog.set_level("DEBUG")
    dormant_jit("zelda")
    caplog.clear()
    run()
    assert "zelda" not in caplog.text and "Zelda" not in caplog.text
    assert f"idp={A}" in caplog.text and "suspended=1" in caplog.text


@pytest.mark.django_db
def test_a_login_that_commits_before_the_lock_wins(dormant_a, monkeypatch):
    winner, loser = dormant_jit("winner"), dormant_jit("loser")
    real_lock = lifecycle.lock
    logins = []

    def login_meanwhile(user_ids):
        # Between the sweep's query and its locks, the winner signs in.
        if not logins:
            logins.append(provision(assertion("winner")))
        return real_lock(user_ids)

    monkeypatch.setattr(lifecycle, "lock", login_meanwhile)
    (result,) = dormancy.sweep()
    assert (result.considered, result.suspended, result.skipped_fresh) == (2, 1, 1)
    assert state_of(winner)[0] == rules.ACTIVE and state_of(loser)[0] == rules.SUSPENDED
    assert [event.user_id for event in suspended_events()] == [loser.pk]


# ----------------------------------------------------------------------------- the command


@pytest.mark.django_db
def test_dry_run_counts_and_lists_and_writes_nothing(dormant_a):
    user = dormant_jit("alice")
    before = ProvisioningEvent.objects.count()
    out = run("--dry-run")
    assert "1 account(s) would be suspended" in out
    assert f"id={user.pk} username={user.get_username()}" in out
    assert ProvisioningEvent.objects.count() == before
    assert state_of(user) == (rules.ACTIVE, rules.SAML, True)


@pytest.mark.django_db
def test_command_sweeps_and_reports(dormant_a):
    dormant_jit("alice")
    out = run()
    assert A in out and "1 dormant, 1 suspended, 0 skipped" in out


@pytest.mark.django_db
def test_idp_limits_the_sweep(settings):
    settings.SAML_JIT = {"DORMANT_AFTER": 90}
    alice, bob = dormant_jit("alice"), dormant_jit("bob", idp=B)
    out = run("--idp", B)
    assert B in out and A not in out
    assert state_of(alice)[0] == rules.ACTIVE and state_of(bob)[0] == rules.SUSPENDED


@pytest.mark.django_db
def test_days_overrides_dormant_after(dormant_a):
    user = dormant_jit("alice", days=40)
    assert "0 dormant" in run()
    assert "1 dormant, 1 suspended" in run("--days", "30")
    assert state_of(user)[0] == rules.SUSPENDED


@pytest.mark.django_db
def test_days_sweeps_an_idp_where_dormancy_is_off_only_when_named(dormant_a):
    bob = dormant_jit("bob", idp=B)
    assert B not in run("--days", "30")
    assert state_of(bob)[0] == rules.ACTIVE
    with pytest.raises(CommandError, match="off"):
        run("--idp", B)
    assert "1 suspended" in run("--idp", B, "--days", "30")
    assert state_of(bob)[0] == rules.SUSPENDED


@pytest.mark.django_db
def test_command_refuses_bad_numbers(dormant_a):
    with pytest.raises(CommandError):
        run("--days", "0")
    with pytest.raises(CommandError):
        run("--batch-size", "0")
    with pytest.raises(CommandError):
        call_command("saml_jit_lifecycle")  # a subcommand is required


# ----------------------------------------------------------------------------- admin


def admin_client() -> Client:
    names = {"email": "root@example.org"} if EMAIL_KEYED else {"username": "root", "email": "root@example.org"}
    superuser = User.objects.create_superuser(**names, password="pw")
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def lifecycle_admin(monkeypatch):
    """The AccountLifecycle admin with the dormancy filter and action (as the lead wires them)."""
    from saml_jit.models import AccountLifecycle as Model

    model_admin = admin.site._registry[Model]
    if EvidenceAgeFilter not in model_admin.list_filter:
        monkeypatch.setattr(model_admin, "list_filter", (*model_admin.list_filter, EvidenceAgeFilter))
    if suspend_dormant not in model_admin.actions:
        monkeypatch.setattr(model_admin, "actions", [*model_admin.actions, suspend_dormant])
    return model_admin


@pytest.mark.django_db
def test_admin_filter_lists_accounts_without_evidence_for_n_days(dormant_a, lifecycle_admin):
    old, older = dormant_jit("old", days=100), dormant_jit("older", days=200)
    jit("fresh")
    lifecycle.touch_scim(dormant_jit("touched", days=400))
    client = admin_client()

    def listed(days: int) -> set:
        response = client.get(reverse(CHANGELIST), {"no_evidence_days": days})
        assert response.status_code == 200, response.content[:2000]
        return {row.user_id for row in response.context["cl"].result_list}

    assert listed(90) == {old.pk, older.pk}
    assert listed(180) == {older.pk}
    assert listed(365) == set()
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "no IdP evidence for more than" in page and "365 days" in page


@pytest.mark.django_db
def test_admin_action_suspends_as_dormant_and_a_login_reactivates(dormant_a, lifecycle_admin):
    user, pending = jit("alice"), jit("bob")
    lifecycle.transition(pending, rules.ADMIN_SUSPEND)
    client = admin_client()
    rows = AccountLifecycle.objects.filter(user__in=[user, pending]).values_list("pk", flat=True)
    response = client.post(reverse(CHANGELIST), {"action": "suspend_dormant", "_selected_action": list(rows)})
    assert response.status_code == 302, response.content[:2000]
    assert state_of(user) == (rules.SUSPENDED, rules.DORMANCY, False)
    event = ProvisioningEvent.objects.filter(kind=EventKind.SUSPENDED, user=user).get()
    assert event.actor == ("root@example.org" if EMAIL_KEYED else "root") and event.source == "dormancy"
    texts = [str(m) for m in client.get(reverse(CHANGELIST)).context["messages"]]
    assert any("1 account suspended" in t for t in texts) and any("1 selected account" in t for t in texts)

    assert provision(assertion("alice")).user == user
    assert state_of(user) == (rules.ACTIVE, rules.SAML, True)


# ----------------------------------------------------------------------------- end to end through the ACS


@pytest.mark.django_db
def test_after_a_sweep_a_fresh_login_reactivates(browser, dormant_a):
    assert browser.login().status_code == 302
    user = User.objects.get()
    age(user, 100)
    dormancy.sweep()
    assert state_of(user) == (rules.SUSPENDED, rules.DORMANCY, False)
    assert browser.client.get("/").wsgi_request.user.is_anonymous  # the session ended

    response = browser.login()
    assert response.status_code == 302, response.content[:2000]
    assert state_of(user) == (rules.ACTIVE, rules.SAML, True)
    kinds = list(ProvisioningEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds[-3:] == [EventKind.SUSPENDED, EventKind.REACTIVATED, EventKind.LOGIN]
    assert dormancy.sweep()[0].considered == 0  # fresh evidence now


@pytest.mark.django_db
def test_after_a_sweep_a_login_is_denied_where_the_idp_does_not_reactivate(browser, settings):
    settings.SAML_JIT = {"IDPS": {A: {"DORMANT_AFTER": 90, "REACTIVATE_DORMANT": False}}}
    assert browser.login().status_code == 302
    user = User.objects.get()
    age(user, 100)
    dormancy.sweep()
    browser.client.logout()
    response = browser.login(attributes=person())
    assert response.status_code == 403
    assert b"<code>account_suspended</code>" in response.content
    assert state_of(user) == (rules.SUSPENDED, rules.DORMANCY, False)


# ----------------------------------------------------------------------------- a sweep and a login at once


def _hold(target, name: str, monkeypatch, seconds: float, when) -> None:
    """Make ``target.name`` sleep ``seconds`` after it returns if ``when()``: its caller holds its locks meanwhile."""
    real = getattr(target, name)

    def held(*args, **kwargs):
        result = real(*args, **kwargs)
        if when():
            time.sleep(seconds)
        return result

    monkeypatch.setattr(target, name, held)


def _race(name: str, order: str, monkeypatch) -> tuple[list, list]:
    """Run a sweep and a login of ``name`` in two threads started by one barrier; ``order`` says who locks first."""
    from saml_jit.provisioning import login

    barrier = threading.Barrier(2, timeout=10)
    results: list = []
    errors: list = []
    current = threading.current_thread
    _hold(lifecycle, "lock", monkeypatch, 0.3, lambda: order == "sweep" and current().name == "sweep")
    _hold(login, "gather", monkeypatch, 0.3, lambda: order == "login" and current().name == "login")

    def go(work):
        try:
            barrier.wait()
            if order not in ("free", current().name):
                time.sleep(0.1)  # let the other one take its locks first
            results.append((current().name, work()))
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=go, name="sweep", args=(lambda: dormancy.sweep(A)[0],)),
        threading.Thread(target=go, name="login", args=(lambda: provision(assertion(name, groups=("admins",))),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results, errors


def _assert_defined_end(user, sweep_result, outcome, session_key: str, reactivate: bool) -> None:
    row = AccountLifecycle.objects.get(user=user)
    user.refresh_from_db()
    kinds = list(ProvisioningEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True))
    assert kinds[0] == EventKind.CREATED
    assert (EventKind.SUSPENDED in kinds) == (sweep_result.suspended == 1)  # the sweep wrote its event, if it won
    assert kinds[-1] in (EventKind.LOGIN, EventKind.UPDATED, EventKind.DENIED)  # the login wrote its own
    if row.state == rules.ACTIVE:
        identity = FederatedIdentity.objects.get(user=user)
        assert user.is_active and user.is_staff and Grant.objects.filter(user=user, kind=GrantKind.STAFF).exists()
        assert identity.last_asserted_at > timezone.now() - timedelta(minutes=1)
        assert outcome.user == user
    else:
        assert (row.state, row.source, user.is_active, user.is_staff) == (rules.SUSPENDED, rules.DORMANCY, False, False)
        assert not Grant.objects.filter(user=user).exclude(kind=GrantKind.GROUP, expires_at__isnull=True).exists()
        assert not Session.objects.filter(session_key=session_key).exists()
        assert not reactivate and outcome.denial is not None and outcome.denial.code == "account_suspended"


@pytest.mark.postgresql
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a real race needs two connections: set DATABASE_URL")
@pytest.mark.django_db(transaction=True)
def test_a_sweep_and_a_login_at_the_same_moment_end_in_a_defined_state(settings, monkeypatch):
    finals = set()
    for round_ in range(12):
        order = ("free", "sweep", "login")[round_ % 3]
        reactivate = round_ % 2 == 0
        settings.SAML_JIT = {**GROUPS, "IDPS": {A: {"DORMANT_AFTER": 90, "REACTIVATE_DORMANT": reactivate}}}
        name = f"racer{round_}"
        with monkeypatch.context() as patched:
            user = jit(name, groups=("admins",))
            age(user, 100)
            browser_client = Client()
            browser_client.force_login(user)
            results, errors = _race(name, order, patched)
        assert errors == [], (round_, order, errors)
        by = dict(results)
        _assert_defined_end(user, by["sweep"], by["login"], browser_client.session.session_key, reactivate)
        finals.add((order, AccountLifecycle.objects.get(user=user).state, by["sweep"].suspended))
    # Both orders really happened: the sweep won some rounds and the login others.
    assert {s for _, _, s in finals} == {0, 1}, finals
