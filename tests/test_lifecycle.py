"""The account lifecycle: the rule table (read from the README), transitions end to end, and no way around SSO."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from saml_jit import lifecycle as rules
from saml_jit import signals
from saml_jit.checks import Codes, check_password_backend
from saml_jit.models import AccountLifecycle, EventKind, FederatedIdentity, Grant, GrantKind, ProvisioningEvent
from saml_jit.provisioning import lifecycle
from saml_jit.review import reports
from tests.conftest import person
from tests.federation import IDP_A

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
README = Path(__file__).resolve().parent.parent / "README.md"
SUBJECT = "subject-alice-0001"
STAFF_SETTINGS = {"STAFF_GROUPS": ["admins"], "GROUP_MAP": {"eng": ["Engineering"]}, "CREATE_GROUPS": True}

#: The README table's columns, in order.
COLUMNS = (
    rules.SAML_LOGIN,
    rules.SCIM_ACTIVATE,
    rules.SCIM_DEACTIVATE,
    rules.ADMIN_APPROVE,
    rules.ADMIN_REJECT,
    rules.ADMIN_SUSPEND,
    rules.ADMIN_DEPROVISION,
    rules.ADMIN_REACTIVATE,
    rules.DORMANT,
)


# ----------------------------------------------------------------------------- the rule table


def readme_table() -> list[tuple[rules.Lifecycle, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Account lifecycle") : text.index("## Customising the policy")]
    cells = []
    for line in section.splitlines():
        row = re.match(r"\| (\w+) \((\w+)\) \|(.*)\|$", line)
        if row:
            state, source, rest = row.groups()
            for trigger, cell in zip(COLUMNS, (c.strip() for c in rest.split("|")), strict=True):
                cells.append((rules.Lifecycle(state, source), trigger, cell))
    return cells


def describe(decision: rules.Decision) -> str:
    if decision.denial:
        return f"denied `{decision.denial}`"
    return f"{decision.to} ({decision.source})" if decision.changes else "—"


def test_the_readme_table_covers_every_state_and_trigger():
    cells = readme_table()
    assert {(cell[0].state, cell[1]) for cell in cells} == {(s, t) for s in rules.STATES for t in COLUMNS}
    assert len(cells) == 7 * len(COLUMNS)


@pytest.mark.parametrize(
    ("current", "trigger", "cell"), readme_table(), ids=lambda v: f"{v.state}({v.source})" if hasattr(v, "state") else v
)
def test_every_cell_of_the_readme_table(current, trigger, cell):
    assert describe(rules.decide(current, trigger)) == cell


def test_a_login_of_a_dormant_account_is_denied_where_the_idp_does_not_reactivate():
    decision = rules.decide(
        rules.Lifecycle(rules.SUSPENDED, rules.DORMANCY), rules.SAML_LOGIN, reactivate_dormant=False
    )
    assert describe(decision) == "denied `account_suspended`"


def test_unknown_trigger_is_an_error():
    with pytest.raises(ValueError):
        rules.decide(rules.Lifecycle(), "erase")


# ----------------------------------------------------------------------------- helpers


def admin_client() -> Client:
    names = {"email": "root@example.org"} if EMAIL_KEYED else {"username": "root", "email": "root@example.org"}
    superuser = User.objects.create_superuser(**names, password="pw")
    client = Client()
    client.force_login(superuser)
    return client


def admin_action(client: Client, model: str, action: str, user) -> None:
    row = AccountLifecycle.objects.get(user=user)
    url = reverse(f"admin:saml_jit_{model}_changelist")
    response = client.post(url, {"action": action, "_selected_action": [row.pk]})
    assert response.status_code == 302, response.content[:2000]


def state_of(user) -> tuple[str, str, bool]:
    row = AccountLifecycle.objects.get(user=user)
    user.refresh_from_db()
    return row.state, row.source, user.is_active


def login(browser, **kwargs):
    browser.client.logout()
    return browser.login(**kwargs)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.django_db
def test_first_login_starts_an_active_jit_lifecycle(browser):
    assert browser.login().status_code == 302
    row = AccountLifecycle.objects.get()
    assert (row.state, row.source, row.created_by) == (rules.ACTIVE, rules.SAML, "jit")
    identity = FederatedIdentity.objects.get()
    assert identity.bound_at == identity.first_asserted_at


@pytest.mark.django_db
def test_pending_account_waits_for_an_administrator_and_gets_no_privileges(browser, settings):
    settings.SAML_JIT = {**STAFF_SETTINGS, "NEW_USERS_ACTIVE": False}
    attributes = person(isMemberOf=["admins", "eng"])
    assert browser.login(attributes=attributes).status_code == 403
    user = User.objects.get()
    assert state_of(user) == (rules.PENDING, rules.SAML, False)
    assert not user.is_staff and not Grant.objects.filter(kind=GrantKind.STAFF).exists()
    assert list(user.groups.values_list("name", flat=True)) == ["Engineering"]  # not privileged

    response = login(browser, attributes=attributes)
    assert b"<code>pending_approval</code>" in response.content and b"awaiting approval" in response.content

    admin_action(admin_client(), "pendingaccount", "approve", user)
    approved = ProvisioningEvent.objects.get(kind=EventKind.APPROVED)
    assert (approved.actor, approved.reason_code, approved.source) == (
        "root@example.org" if EMAIL_KEYED else "root",
        "approved",
        "admin",
    )
    assert login(browser, attributes=attributes).status_code == 302
    user.refresh_from_db()
    assert user.is_staff  # privileges arrive with the first login after approval


@pytest.mark.django_db
def test_rejected_approval_deprovisions(browser, settings):
    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    browser.login()
    user = User.objects.get()
    admin_action(admin_client(), "pendingaccount", "reject", user)
    assert state_of(user) == (rules.DEPROVISIONED, rules.ADMIN, False)
    assert b"<code>account_deprovisioned</code>" in login(browser).content


@pytest.mark.django_db
def test_dormant_account_returns_through_its_idp(browser):
    browser.login()
    user = User.objects.get()
    lifecycle.transition(user, rules.DORMANT, lifecycle.Context(idp_entity_id=IDP_A.entity_id))
    assert state_of(user) == (rules.SUSPENDED, rules.DORMANCY, False)

    assert login(browser).status_code == 302
    assert state_of(user) == (rules.ACTIVE, rules.SAML, True)
    kinds = list(ProvisioningEvent.objects.order_by("id").values_list("kind", "reason_code"))
    assert kinds[-2:] == [(EventKind.REACTIVATED, "dormant_account_returned"), (EventKind.LOGIN, "")]


@pytest.mark.django_db
def test_dormant_account_stays_suspended_where_the_idp_does_not_reactivate(browser, settings):
    browser.login()
    user = User.objects.get()
    lifecycle.transition(user, rules.DORMANT)
    settings.SAML_JIT = {"REACTIVATE_DORMANT": False}
    assert b"<code>account_suspended</code>" in login(browser).content
    assert state_of(user) == (rules.SUSPENDED, rules.DORMANCY, False)


@pytest.mark.django_db
def test_administrator_suspension_outlasts_a_login(browser):
    browser.login()
    user = User.objects.get()
    client = admin_client()
    admin_action(client, "accountlifecycle", "suspend", user)
    assert b"<code>account_suspended</code>" in login(browser).content
    admin_action(client, "accountlifecycle", "reactivate", user)
    assert login(browser).status_code == 302


@pytest.mark.django_db
def test_deprovisioning_ends_sessions_removes_grants_and_notifies(
    browser, settings, django_capture_on_commit_callbacks
):
    settings.SAML_JIT = STAFF_SETTINGS
    browser.login(attributes=person(isMemberOf=["admins", "eng"]))
    user = User.objects.get()
    assert user.is_staff and Grant.objects.count() == 2
    session_key = browser.client.session.session_key
    received = []
    signals.account_deprovisioned.connect(lambda sender, **kw: received.append(kw), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            admin_action(admin_client(), "accountlifecycle", "deprovision", user)
    finally:
        signals.account_deprovisioned.disconnect(dispatch_uid="t")
    user.refresh_from_db()
    assert not user.is_active and not user.is_staff and not Grant.objects.exists()
    assert not user.groups.exists()
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=session_key).exists()
    assert browser.client.get("/").wsgi_request.user.is_anonymous
    (kwargs,) = received
    assert (kwargs["state"], kwargs["previous"], kwargs["source"]) == (rules.DEPROVISIONED, rules.ACTIVE, "admin")
    assert kwargs["event"].diff["sessions_ended"] == 1 and kwargs["event"].diff["grants_removed"] == 2


@pytest.mark.django_db
def test_suspension_drops_privileges_and_keeps_plain_memberships(browser, settings):
    settings.SAML_JIT = STAFF_SETTINGS
    browser.login(attributes=person(isMemberOf=["admins", "eng"]))
    user = User.objects.get()
    lifecycle.transition(user, rules.ADMIN_SUSPEND, lifecycle.Context(actor="ops"))
    user.refresh_from_db()
    assert not user.is_staff
    assert list(Grant.objects.values_list("kind", flat=True)) == [GrantKind.GROUP]
    assert Group.objects.get(name="Engineering").user_set.filter(pk=user.pk).exists()


@pytest.mark.django_db
def test_every_transition_writes_one_event_and_sends_lifecycle_changed(browser, django_capture_on_commit_callbacks):
    browser.login()
    user = User.objects.get()
    received = []
    signals.lifecycle_changed.connect(lambda sender, **kw: received.append(sender), weak=False, dispatch_uid="t")
    try:
        before = ProvisioningEvent.objects.count()
        with django_capture_on_commit_callbacks(execute=True):
            for trigger in (rules.ADMIN_SUSPEND, rules.ADMIN_SUSPEND, rules.ADMIN_REACTIVATE, rules.ADMIN_DEPROVISION):
                lifecycle.transition(user, trigger, lifecycle.Context(actor="ops"))
    finally:
        signals.lifecycle_changed.disconnect(dispatch_uid="t")
    assert ProvisioningEvent.objects.count() - before == 3  # the second suspend changes nothing
    assert received == [EventKind.SUSPENDED, EventKind.REACTIVATED, EventKind.DEACTIVATED]


@pytest.mark.django_db
def test_actions_need_the_manage_lifecycle_permission(browser):
    browser.login()
    staff = User.objects.create_user(
        **{User.USERNAME_FIELD: "ops@example.org" if EMAIL_KEYED else "ops"}, password="pw", is_staff=True
    )
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_accountlifecycle"))
    client = Client()
    client.force_login(staff)
    page = client.get(reverse("admin:saml_jit_accountlifecycle_changelist"))
    assert page.status_code == 200 and b'value="deprovision"' not in page.content
    staff.user_permissions.add(Permission.objects.get(codename="manage_lifecycle"))
    page = client.get(reverse("admin:saml_jit_accountlifecycle_changelist"))
    assert b'value="deprovision"' in page.content


@pytest.mark.django_db
def test_approval_queue_lists_pending_accounts_with_their_age(browser, settings):
    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    browser.login()
    browser.login(name_id="subject-bob-0002", attributes=person(email="bob@example.org"))
    AccountLifecycle.objects.filter(user__email="bob@example.org").update(state=rules.ACTIVE)
    page = admin_client().get(reverse("admin:saml_jit_pendingaccount_changelist")).content.decode()
    assert "alice" in page and "bob" not in page and "0 days" in page


# ----------------------------------------------------------------------------- identities: tell the person


@pytest.mark.django_db
def test_linking_and_unlinking_tell_the_person(browser, settings, django_capture_on_commit_callbacks):
    settings.SAML_JIT = {"NOTIFY_IDENTITY_CHANGES": True}
    linked, unlinked = [], []
    signals.identity_linked.connect(lambda sender, **kw: linked.append(kw), weak=False, dispatch_uid="l")
    signals.identity_unlinked.connect(lambda sender, **kw: unlinked.append(kw), weak=False, dispatch_uid="u")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            browser.login()
        identity = FederatedIdentity.objects.get()
        client = admin_client()
        url = reverse("admin:saml_jit_federatedidentity_delete", args=[identity.pk])
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url, {"post": "yes"}).status_code == 302
    finally:
        signals.identity_linked.disconnect(dispatch_uid="l")
        signals.identity_unlinked.disconnect(dispatch_uid="u")
    assert [kw["identity"].subject for kw in linked] == [SUBJECT] == [kw["identity"].subject for kw in unlinked]
    assert [m.to for m in mail.outbox] == [["alice@example.org"], ["alice@example.org"]]
    assert "connected" in mail.outbox[0].subject and "removed" in mail.outbox[1].subject
    assert IDP_A.entity_id in mail.outbox[1].body
    event = ProvisioningEvent.objects.get(kind=EventKind.UNLINKED)
    assert (event.subject, event.source, event.actor) == (
        SUBJECT,
        "admin",
        "root@example.org" if EMAIL_KEYED else "root",
    )
    assert not FederatedIdentity.objects.exists()


@pytest.mark.django_db
def test_no_email_unless_the_idp_asks_for_it(browser, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        browser.login()
    assert mail.outbox == []


# ----------------------------------------------------------------------------- no way around SSO


PASSWORD_BACKENDS = ["saml_jit.backends.PasswordBackend", "saml_jit.backends.SamlJitBackend"]


@pytest.fixture
def sso_user_with_password(browser, settings):
    settings.AUTHENTICATION_BACKENDS = PASSWORD_BACKENDS
    browser.login()
    user = User.objects.get()
    user.set_password("correct horse")
    user.is_staff = True
    user.save()
    return user


@pytest.mark.django_db
def test_password_login_refused_for_sso_only_accounts(sso_user_with_password, settings):
    settings.SAML_JIT = {"ALLOW_PASSWORD_LOGIN": False}
    client = Client()
    username = sso_user_with_password.get_username()
    response = client.post(reverse("admin:login"), {"username": username, "password": "correct horse"})
    assert response.status_code == 200
    assert "signs in through single sign-on only" in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = ProvisioningEvent.objects.get(reason_code="password_login_refused")
    assert (event.kind, event.user, event.idp_entity_id) == (EventKind.DENIED, sso_user_with_password, IDP_A.entity_id)
    client.post(reverse("admin:login"), {"username": username, "password": "correct horse"})
    assert ProvisioningEvent.objects.filter(reason_code="password_login_refused").count() == 1  # throttled


@pytest.mark.django_db
def test_wrong_password_reveals_nothing(sso_user_with_password, settings):
    settings.SAML_JIT = {"ALLOW_PASSWORD_LOGIN": False}
    response = Client().post(
        reverse("admin:login"), {"username": sso_user_with_password.get_username(), "password": "wrong"}
    )
    assert "single sign-on" not in response.content.decode()
    assert not ProvisioningEvent.objects.filter(reason_code="password_login_refused").exists()


@pytest.mark.django_db
def test_password_login_allowed_by_default(sso_user_with_password):
    client = Client()
    response = client.post(
        reverse("admin:login"), {"username": sso_user_with_password.get_username(), "password": "correct horse"}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_w010_model_backend_lets_passwords_around_sso(settings):
    settings.SAML_JIT = {"ALLOW_PASSWORD_LOGIN": False}
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", *PASSWORD_BACKENDS[1:]]
    assert [m.id for m in check_password_backend()] == [Codes.SSO_BYPASS_BACKEND]
    settings.AUTHENTICATION_BACKENDS = PASSWORD_BACKENDS
    assert check_password_backend() == []
    settings.SAML_JIT = {}
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", *PASSWORD_BACKENDS[1:]]
    assert check_password_backend() == []


@pytest.mark.django_db
def test_sso_bypass_report(sso_user_with_password, browser):
    names = {"email": "root@example.org"} if EMAIL_KEYED else {"username": "root", "email": "root@example.org"}
    local_admin = User.objects.create_superuser(**names, password="pw")
    found = reports.sso_bypass()
    assert list(found.sso_with_password) == [sso_user_with_password]
    assert list(found.privileged_without_identity) == [local_admin]
    assert found.inactive_sessions == 0
    lifecycle.transition(sso_user_with_password, rules.ADMIN_DEPROVISION)
    assert reports.sso_bypass().inactive_sessions == 0  # deprovisioning ended the session


@pytest.mark.django_db
def test_report_command(sso_user_with_password):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("saml_jit_lifecycle", "report", "--list", stdout=out)
    text = out.getvalue()
    assert "SSO accounts with a usable password: 1" in text
    assert f"id={sso_user_with_password.pk} username={sso_user_with_password.get_username()}" in text
    assert "staff and superusers without a federated identity: 0" in text
    assert "sessions of accounts that are not active: 0" in text


@pytest.mark.django_db(transaction=True)
def test_an_account_without_a_lifecycle_row_still_signs_in(browser):
    """An identity bound before saml_jit kept lifecycle rows is found without the row: one identity query more."""
    locks = connection.features.has_select_for_update
    with CaptureQueriesContext(connection) as first:
        assert browser.login().status_code == 302
    user = FederatedIdentity.objects.get().user
    returning = _identity_reads(browser)
    AccountLifecycle.objects.filter(user=user).delete()
    legacy = _identity_reads(browser)
    assert ProvisioningEvent.objects.order_by("pk").last().kind == EventKind.LOGIN
    assert get_user_model().objects.count() == 1 and FederatedIdentity.objects.get().user == user
    # PostgreSQL: locked with the lifecycle row; if none, an existence check, then without it. SQLite: one read.
    assert (_identity_selects(first), returning, legacy) == ((2, 1, 3) if locks else (1, 1, 1))
    # A first login's second look (PostgreSQL) is the bare existence check: no joins.
    assert _identity_selects(first, joined=False) == (1 if locks else 0)


def _identity_selects(queries: CaptureQueriesContext, joined: bool | None = None) -> int:
    return sum(
        q["sql"].startswith("SELECT")
        and 'FROM "saml_jit_federatedidentity"' in q["sql"]
        and (joined is None or ("JOIN" in q["sql"]) == joined)
        for q in queries.captured_queries
    )


def _identity_reads(browser) -> int:
    browser.client.logout()
    with CaptureQueriesContext(connection) as queries:
        assert browser.login().status_code == 302
    return _identity_selects(queries)
