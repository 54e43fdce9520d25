"""Groups and privileges end to end: real signed responses through the real ACS.

Every login here goes GET /saml2/login/ -> POST /saml2/acs/ with a response
minted and signed by the test IdP; pysaml2 validates it for real. The database
is then checked for memberships, grant rows, flags and events. Expiry is
exercised through the cron command, the per-request middleware and the admin.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from saml_jit.middleware import RECHECK, SESSION_NEXT_CHECK
from saml_jit.models import EventKind, EventSource, FederatedIdentity, Grant, GrantKind, ProvisioningEvent
from tests.conftest import person
from tests.federation import IDP_A, IDP_B

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
SUBJECT = "subject-alice-0001"
MIDDLEWARE = "saml_jit.middleware.GrantExpiryMiddleware"
OVERAGE_CLAIM = "http://schemas.microsoft.com/claims/groups.link"
TTL = 3600

GROUPS = {
    "GROUP_MAP": {"eng": ["Engineering"], "ops": ["Ops"], "sales": ["Sales"]},
    "PRIVILEGED_GROUPS": ["Ops"],
    "STAFF_GROUPS": ["admins"],
    "SUPERUSER_GROUPS": ["root"],
    "PRIVILEGE_TTL": TTL,
}


@pytest.fixture
def groups(settings):
    settings.SAML_JIT = dict(GROUPS)
    return {name: Group.objects.create(name=name) for name in ("Engineering", "Ops", "Sales")}


@pytest.fixture
def deploy_perm(groups):
    """A permission that only the privileged group Ops gives."""
    perm = Permission.objects.create(
        codename="deploy", name="Can deploy", content_type=ContentType.objects.get_for_model(Grant)
    )
    groups["Ops"].permissions.add(perm)
    return "saml_jit.deploy"


@pytest.fixture
def with_middleware(settings):
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, MIDDLEWARE)
    settings.MIDDLEWARE = middleware


def login(browser, *member_of, idp=IDP_A, name_id=SUBJECT, fresh=True, expect=302, **kwargs):
    """A complete login in a fresh browser session, asserting ``member_of``."""
    if fresh:
        browser.client.logout()
    attributes = kwargs.pop("attributes", None) or person(isMemberOf=list(member_of))
    response = browser.login(idp=idp, name_id=name_id, attributes=attributes, **kwargs)
    assert response.status_code == expect, response.content[:2000]
    return response


def alice():
    """Alice, freshly loaded (no cached permissions)."""
    return User.objects.get(email="alice@example.org")


def names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def grant_targets(user=None) -> set[tuple[str, str]]:
    """(IdP, target) of every grant row (of ``user``)."""
    grants = Grant.objects.select_related("group")
    if user is not None:
        grants = grants.filter(user=user)
    return {(g.idp_entity_id, g.target) for g in grants}


def events(**filters):
    return list(ProvisioningEvent.objects.filter(**filters).order_by("id"))


def last_event():
    return ProvisioningEvent.objects.order_by("-id").first()


def local_user(email="alice@example.org", username="alice", **extra):
    if EMAIL_KEYED:
        return User.objects.create_user(email=email, **extra)
    return User.objects.create_user(username=username, email=email, **extra)


def in_the_past(**filters):
    """Move the matching grants' expiry one second into the past."""
    return Grant.objects.filter(**filters).update(expires_at=timezone.now() - timedelta(seconds=1))


# --------------------------------------------------------------------------
# Groups added and removed


def test_group_added_on_first_login(browser, groups):
    before = timezone.now()
    login(browser, "eng", "unmapped", assertion_id="_grant-1")

    user = alice()
    assert names(user) == {"Engineering"}
    grant = Grant.objects.get()
    assert (grant.user, grant.kind, grant.group, grant.idp_entity_id) == (
        user,
        GrantKind.GROUP,
        groups["Engineering"],
        IDP_A.entity_id,
    )
    assert grant.assertion_id == "_grant-1"
    assert grant.expires_at is None  # not a privileged group
    assert before <= grant.granted_at == grant.last_asserted_at <= timezone.now()
    (created,) = events()
    assert created.kind == EventKind.CREATED
    assert created.assertion_id == "_grant-1"
    assert created.diff["groups"] == {"added": ["Engineering"], "removed": []}


def test_group_added_on_later_login(browser, groups):
    login(browser)
    assert names(alice()) == set()
    assert not Grant.objects.exists()

    login(browser, "eng", assertion_id="_grant-2")

    assert names(alice()) == {"Engineering"}
    assert Grant.objects.get().assertion_id == "_grant-2"
    _created, updated = events()
    assert updated.kind == EventKind.UPDATED
    assert updated.assertion_id == "_grant-2"
    assert updated.diff == {"groups": {"added": ["Engineering"], "removed": []}}


def test_group_removed_when_no_longer_asserted(browser, groups):
    login(browser, "eng", "sales")
    login(browser, "sales", assertion_id="_revoke-1")

    user = alice()
    assert names(user) == {"Sales"}
    assert grant_targets(user) == {(IDP_A.entity_id, "Sales")}
    _created, updated = events()
    assert updated.kind == EventKind.UPDATED
    assert updated.assertion_id == "_revoke-1"
    assert updated.diff == {"groups": {"added": [], "removed": ["Engineering"]}}


def test_all_groups_removed_when_none_asserted(browser, groups):
    login(browser, "eng", "sales")
    login(browser)
    assert names(alice()) == set()
    assert not Grant.objects.exists()
    assert last_event().diff == {"groups": {"added": [], "removed": ["Engineering", "Sales"]}}


def test_reasserted_group_refreshes_grant_without_change_event(browser, groups):
    login(browser, "eng", assertion_id="_first")
    granted_at = Grant.objects.get().granted_at
    login(browser, "eng", assertion_id="_second")

    grant = Grant.objects.get()
    assert grant.assertion_id == "_second"
    assert grant.granted_at == granted_at
    assert grant.last_asserted_at > granted_at
    assert last_event().kind == EventKind.LOGIN
    assert last_event().diff == {}


def test_group_value_under_its_friendly_name(browser, groups):
    # Some IdPs send groups as a "groups" attribute (no URI).
    login(browser, attributes={**person(), "groups": ["eng"]})
    assert names(alice()) == {"Engineering"}


def test_pattern_passes_group_names_through(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "GROUP_PATTERN": r"[A-Z][a-z]+"}
    login(browser, "Sales", "Nonexistent", "sales-team")
    user = alice()
    assert names(user) == {"Sales"}
    assert grant_targets(user) == {(IDP_A.entity_id, "Sales")}
    assert "1 mapped group(s) do not exist" in last_event().message


# --------------------------------------------------------------------------
# Hand-assigned memberships: "the first to grant owns it"


def test_hand_assigned_unmapped_group_is_never_touched(browser, groups):
    login(browser, "eng")
    alice().groups.add(Group.objects.create(name="Auditors"))
    login(browser)
    assert names(alice()) == {"Auditors"}


def test_hand_added_before_saml_asserts_it_is_never_removed(browser, groups):
    login(browser)
    alice().groups.add(groups["Engineering"])  # an administrator, by hand

    login(browser, "eng")
    assert not Grant.objects.exists()  # the admin owns it: no grant
    assert last_event().diff == {}

    login(browser)
    assert names(alice()) == {"Engineering"}
    assert last_event().diff == {}


def test_hand_assigned_on_a_local_account_before_linking_is_kept(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "LINK_BY_EMAIL": True}
    user = local_user()
    user.groups.add(groups["Engineering"], groups["Sales"])

    login(browser, "eng")  # links and asserts Engineering
    assert FederatedIdentity.objects.get().user == user
    assert not Grant.objects.exists()

    login(browser)
    assert names(alice()) == {"Engineering", "Sales"}


def test_granted_by_saml_first_is_removed_even_if_an_admin_adds_it_again(browser, groups):
    login(browser, "eng")
    alice().groups.add(groups["Engineering"])  # already a member: changes nothing
    assert Grant.objects.count() == 1

    login(browser)
    assert names(alice()) == set()


def test_hand_removed_managed_group_is_added_back_while_asserted(browser, groups):
    login(browser, "eng")
    alice().groups.remove(groups["Engineering"])
    login(browser, "eng")
    assert names(alice()) == {"Engineering"}
    assert last_event().diff == {"groups": {"added": ["Engineering"], "removed": []}}


# --------------------------------------------------------------------------
# Required groups


def test_required_group_missing_denies_and_creates_nothing(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "REQUIRED_GROUPS": ["members"]}
    response = login(browser, "eng", expect=403, assertion_id="_no-members")

    assert b"<code>missing_required_group</code>" in response.content
    assert not User.objects.exists()
    assert not FederatedIdentity.objects.exists()
    assert not Grant.objects.exists()
    assert not groups["Engineering"].user_set.exists()
    (denied,) = events()
    assert (denied.kind, denied.reason_code, denied.assertion_id) == (
        EventKind.DENIED,
        "missing_required_group",
        "_no-members",
    )
    assert denied.user is None
    assert "_auth_user_id" not in browser.client.session


def test_required_group_present_signs_in(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "REQUIRED_GROUPS": ["members", "guests"]}
    login(browser, "guests", "eng")
    assert names(alice()) == {"Engineering"}
    assert browser.client.session["_auth_user_id"] == str(alice().pk)


def test_required_group_missing_leaves_existing_account_unchanged(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "REQUIRED_GROUPS": ["members"]}
    login(browser, "members", "eng", "admins")
    before = alice()
    grants_before = grant_targets(before)

    response = login(
        browser, expect=403, attributes=person(surname="Pleasance", isMemberOf=["sales"]), assertion_id="_denied"
    )

    assert b"<code>missing_required_group</code>" in response.content
    after = alice()
    assert after.last_name == "Liddell"
    assert after.is_staff
    assert names(after) == {"Engineering"}
    assert grant_targets(after) == grants_before
    assert User.objects.count() == 1
    _created, denied = events()
    assert (denied.kind, denied.reason_code) == (EventKind.DENIED, "missing_required_group")
    # authorize() runs before the account is looked up: the event names the
    # identity (IdP, subject), which is bound to the account.
    assert (denied.idp_entity_id, denied.subject, denied.assertion_id) == (IDP_A.entity_id, SUBJECT, "_denied")
    assert "_auth_user_id" not in browser.client.session


# --------------------------------------------------------------------------
# Staff and superuser


def test_superuser_refused_unless_allowed(browser, groups):
    login(browser, "root", assertion_id="_root-1")
    user = alice()
    assert not user.is_superuser
    assert not Grant.objects.filter(kind=GrantKind.SUPERUSER).exists()
    (created,) = events()
    assert "superuser asserted but ALLOW_SUPERUSER is off" in created.message
    assert "is_superuser" not in created.diff


def test_superuser_granted_when_allowed(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "ALLOW_SUPERUSER": True}
    login(browser, "root", assertion_id="_root-2")
    user = alice()
    assert user.is_superuser
    assert not user.is_staff  # superuser does not imply staff
    grant = Grant.objects.get(kind=GrantKind.SUPERUSER)
    assert grant.group is None and grant.assertion_id == "_root-2"
    assert grant.expires_at is not None
    assert created_diff()["is_superuser"] == [False, True]

    # ALLOW_SUPERUSER switched off again: the next login demotes.
    settings.SAML_JIT = dict(GROUPS)
    login(browser, "root")
    assert not alice().is_superuser
    assert not Grant.objects.exists()
    assert last_event().diff == {"is_superuser": [True, False]}


def created_diff():
    return ProvisioningEvent.objects.get(kind=EventKind.CREATED).diff


def test_staff_granted_then_demoted(browser, groups):
    login(browser, "admins", assertion_id="_staff-1")
    user = alice()
    assert user.is_staff
    grant = Grant.objects.get()
    assert (grant.kind, grant.group, grant.assertion_id) == (GrantKind.STAFF, None, "_staff-1")
    assert created_diff()["is_staff"] == [False, True]

    login(browser, "eng", assertion_id="_staff-2")

    user = alice()
    assert not user.is_staff
    assert not Grant.objects.filter(kind=GrantKind.STAFF).exists()
    updated = last_event()
    assert updated.kind == EventKind.UPDATED
    assert updated.assertion_id == "_staff-2"
    assert updated.diff["is_staff"] == [True, False]
    assert updated.diff["groups"] == {"added": ["Engineering"], "removed": []}


def test_hand_set_staff_is_never_demoted(browser, groups):
    login(browser)
    User.objects.filter(pk=alice().pk).update(is_staff=True)
    login(browser, "admins")
    assert not Grant.objects.exists()
    login(browser)
    assert alice().is_staff


def test_staff_does_not_link_by_email(browser, groups, settings):
    # A staff account is never taken over by email, even with LINK_BY_EMAIL.
    settings.SAML_JIT = {**GROUPS, "LINK_BY_EMAIL": True}
    local_user(is_staff=True)
    response = login(browser, "admins", expect=403)
    assert b"<code>link_refused_privileged</code>" in response.content
    assert not Grant.objects.exists()


def test_group_named_staff_is_managed_like_any_other(browser, settings):
    settings.SAML_JIT = {"GROUP_MAP": {"staff": ["staff"]}}
    Group.objects.create(name="staff")
    login(browser, "staff")
    assert names(alice()) == {"staff"}
    assert not alice().is_staff
    login(browser)  # no longer asserted: the managed membership must go
    assert names(alice()) == set()
    assert not Grant.objects.exists()


# --------------------------------------------------------------------------
# Overage, several IdPs, group creation


def test_entra_overage_keeps_managed_groups_unchanged(browser, groups):
    login(browser, "eng", "ops", "admins")
    user = alice()
    grants_before = set(Grant.objects.values_list("pk", "assertion_id", "expires_at"))

    overage = {
        **person(),
        OVERAGE_CLAIM: ["https://graph.windows.net/tenant/users/0000/getMemberObjects"],
    }
    login(browser, attributes=overage, assertion_id="_overage")

    user = alice()
    assert names(user) == {"Engineering", "Ops"}
    assert user.is_staff
    assert set(Grant.objects.values_list("pk", "assertion_id", "expires_at")) == grants_before
    event = last_event()
    assert event.assertion_id == "_overage"
    assert event.reason_code == "groups_overage"
    assert "overage" in event.message
    assert event.diff == {}


def test_entra_overage_with_required_groups_denies(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "REQUIRED_GROUPS": ["members"]}
    response = login(browser, expect=403, attributes={**person(), OVERAGE_CLAIM: ["https://graph.example/x"]})
    assert b"<code>groups_overage</code>" in response.content
    assert not User.objects.exists()


def test_two_idps_granting_the_same_group(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "IDPS": {IDP_B.entity_id: {"LINK_BY_EMAIL": True}}}
    login(browser, "eng", idp=IDP_A)
    login(browser, "eng", idp=IDP_B, name_id="subject-b-alice")
    user = alice()
    assert grant_targets(user) == {(IDP_A.entity_id, "Engineering"), (IDP_B.entity_id, "Engineering")}

    login(browser, idp=IDP_A)  # A lets go; B still grants it
    assert names(alice()) == {"Engineering"}
    assert grant_targets(user) == {(IDP_B.entity_id, "Engineering")}
    assert last_event().diff == {}

    login(browser, idp=IDP_B, name_id="subject-b-alice")  # the last one lets go
    assert names(alice()) == set()
    assert not Grant.objects.exists()
    assert last_event().diff == {"groups": {"added": [], "removed": ["Engineering"]}}
    assert last_event().idp_entity_id == IDP_B.entity_id


def test_per_idp_group_map(browser, groups, settings):
    settings.SAML_JIT = {
        **GROUPS,
        "IDPS": {IDP_B.entity_id: {"GROUP_MAP": {"eng": ["Sales"]}}},
    }
    login(
        browser, "eng", idp=IDP_B, name_id="subject-b", attributes=person(email="bob@example.net", isMemberOf=["eng"])
    )
    assert names(User.objects.get(email="bob@example.net")) == {"Sales"}


def test_missing_group_is_skipped_when_creation_is_off(browser, settings):
    settings.SAML_JIT = {"GROUP_MAP": {"eng": ["Engineering"]}}
    login(browser, "eng")
    assert not Group.objects.exists()
    assert not Grant.objects.exists()
    assert "1 mapped group(s) do not exist and CREATE_GROUPS is off" in last_event().message


def test_create_groups_creates_the_django_group(browser, settings):
    settings.SAML_JIT = {"GROUP_MAP": {"eng": ["Engineering", "Builders"]}, "CREATE_GROUPS": True}
    login(browser, "eng")
    assert set(Group.objects.values_list("name", flat=True)) == {"Engineering", "Builders"}
    assert names(alice()) == {"Engineering", "Builders"}
    assert grant_targets() == {(IDP_A.entity_id, "Engineering"), (IDP_A.entity_id, "Builders")}
    assert created_diff()["groups"] == {"added": ["Builders", "Engineering"], "removed": []}


# --------------------------------------------------------------------------
# JIT privilege: expiry through the cron command


def test_privileged_group_and_staff_get_an_expiry(browser, groups):
    before = timezone.now()
    login(browser, "ops", "eng", "admins")
    by_target = {g.target: g for g in Grant.objects.select_related("group")}
    assert set(by_target) == {"Ops", "Engineering", "staff"}
    assert by_target["Engineering"].expires_at is None
    for target in ("Ops", "staff"):
        expires_at = by_target[target].expires_at
        assert before + timedelta(seconds=TTL) <= expires_at <= timezone.now() + timedelta(seconds=TTL)


def test_expire_command_removes_expired_privileges(browser, deploy_perm):
    login(browser, "ops", "eng", "admins", assertion_id="_priv-1")
    pk = alice().pk
    user = User.objects.get(pk=pk)
    assert user.has_perm(deploy_perm)
    assert user.is_staff

    assert in_the_past(kind=GrantKind.GROUP, group__name="Ops") == 1
    in_the_past(kind=GrantKind.STAFF)
    call_command("saml_jit_expire_grants", stdout=(out := _Out()))

    assert "2 expired grant(s) removed." in out.text
    user = User.objects.get(pk=pk)  # a fresh instance: no permission cache
    assert not user.has_perm(deploy_perm)
    assert not user.is_staff
    assert names(user) == {"Engineering"}
    assert grant_targets(user) == {(IDP_A.entity_id, "Engineering")}
    expired = events(kind=EventKind.EXPIRED)
    assert len(expired) == 2
    assert {e.source for e in expired} == {EventSource.SYSTEM}
    assert {e.assertion_id for e in expired} == {"_priv-1"}
    assert {e.user_id for e in expired} == {pk}
    assert {e.idp_entity_id for e in expired} == {IDP_A.entity_id}
    diffs = sorted((e.diff for e in expired), key=str)
    assert {"groups": {"added": [], "removed": ["Ops"]}} in diffs
    assert {"is_staff": [True, False]} in diffs
    assert any(e.message.startswith("Ops expired") for e in expired)


def test_expire_command_leaves_live_grants_alone(browser, deploy_perm):
    login(browser, "ops", "admins")
    login(browser, "ops", name_id="subject-bob", attributes=person(email="bob@example.org", isMemberOf=["ops"]))
    bob = User.objects.get(email="bob@example.org")
    in_the_past(user=bob)
    live = set(Grant.objects.filter(user=alice()).values_list("pk", "expires_at"))

    call_command("saml_jit_expire_grants", stdout=_Out())

    assert set(Grant.objects.filter(user=alice()).values_list("pk", "expires_at")) == live
    assert User.objects.get(pk=alice().pk).has_perm(deploy_perm)
    assert alice().is_staff
    assert not User.objects.get(pk=bob.pk).has_perm(deploy_perm)
    assert [e.user for e in events(kind=EventKind.EXPIRED)] == [bob]


def test_expire_command_dry_run_only_counts(browser, deploy_perm):
    login(browser, "ops", "admins")
    in_the_past()
    grants_before = set(Grant.objects.values_list("pk", flat=True))
    events_before = ProvisioningEvent.objects.count()

    call_command("saml_jit_expire_grants", "--dry-run", stdout=(out := _Out()))

    assert "2 expired grant(s) would be removed." in out.text
    assert set(Grant.objects.values_list("pk", flat=True)) == grants_before
    assert ProvisioningEvent.objects.count() == events_before
    user = User.objects.get(pk=alice().pk)
    assert user.is_staff and user.has_perm(deploy_perm)


def test_expire_command_keeps_membership_another_idp_still_grants(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "IDPS": {IDP_B.entity_id: {"LINK_BY_EMAIL": True, "PRIVILEGE_TTL": None}}}
    login(browser, "ops", idp=IDP_A)
    login(browser, "ops", idp=IDP_B, name_id="subject-b-alice")
    in_the_past(idp_entity_id=IDP_A.entity_id)

    call_command("saml_jit_expire_grants", stdout=_Out())

    assert names(alice()) == {"Ops"}
    assert grant_targets() == {(IDP_B.entity_id, "Ops")}
    (expired,) = events(kind=EventKind.EXPIRED)
    assert expired.diff == {"groups": {"added": [], "removed": []}}


def test_asserting_a_group_whose_other_grant_expired_takes_it_over(browser, groups, settings):
    settings.SAML_JIT = {**GROUPS, "IDPS": {IDP_B.entity_id: {"LINK_BY_EMAIL": True}}}
    login(browser, idp=IDP_A)
    login(browser, "ops", idp=IDP_B, name_id="subject-b-alice")
    in_the_past(idp_entity_id=IDP_B.entity_id)  # B's grant expired; cron has not run yet

    login(browser, "ops", idp=IDP_A)  # A asserts Ops now
    call_command("saml_jit_expire_grants", stdout=_Out())

    assert names(alice()) == {"Ops"}
    assert grant_targets() == {(IDP_A.entity_id, "Ops")}


def test_relogin_before_expiry_refreshes_expires_at(browser, groups):
    login(browser, "ops", "admins", assertion_id="_r1")
    soon = timezone.now() + timedelta(seconds=60)
    Grant.objects.update(expires_at=soon)

    login(browser, "ops", "admins", assertion_id="_r2")

    for grant in Grant.objects.all():
        assert grant.expires_at >= timezone.now() + timedelta(seconds=TTL - 60)
        assert grant.assertion_id == "_r2"
    call_command("saml_jit_expire_grants", stdout=_Out())
    assert Grant.objects.count() == 2
    assert alice().is_staff


def test_expired_but_uncollected_grant_is_removed_by_login_without_it(browser, groups):
    login(browser, "ops")
    in_the_past()
    login(browser)
    assert names(alice()) == set()
    assert not Grant.objects.exists()


class _Out:
    """A stdout for call_command that remembers what was written."""

    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


# --------------------------------------------------------------------------
# JIT privilege: expiry through the per-request middleware


def grant_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "saml_jit_grant" in q["sql"]]


def test_middleware_removes_expired_privilege_before_the_view(browser, deploy_perm, with_middleware):
    login(browser, "ops", "eng", "admins")
    client = browser.client
    pk = alice().pk

    # First request after login: a check is due, nothing expired.
    with CaptureQueriesContext(connection) as due:
        assert client.get("/").status_code == 200
    assert len(grant_queries(due)) == 1
    assert client.session[SESSION_NEXT_CHECK]

    # Within RECHECK: no grant query at all.
    with CaptureQueriesContext(connection) as idle:
        assert client.get("/").status_code == 200
    assert grant_queries(idle) == []

    # The admin index needs is_staff: the user gets in.
    assert client.get(reverse("admin:index")).status_code == 200

    # Past the TTL (and past RECHECK): the next request expires the grants.
    future = timezone.now() + timedelta(seconds=TTL + 1)
    with mock.patch("django.utils.timezone.now", return_value=future):
        response = client.get(reverse("admin:index"))
    # request.user already reflected the expiry: no longer staff -> login page.
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))

    user = User.objects.get(pk=pk)
    assert not user.is_staff
    assert not user.has_perm(deploy_perm)
    assert names(user) == {"Engineering"}
    assert grant_targets(user) == {(IDP_A.entity_id, "Engineering")}
    assert len(events(kind=EventKind.EXPIRED)) == 2
    assert client.session["_auth_user_id"] == str(pk)  # still signed in, only less privileged


def test_middleware_cost_when_no_check_is_due(browser, groups, settings, with_middleware):
    login(browser, "ops")
    client = browser.client
    client.get("/")  # the due check after login

    with CaptureQueriesContext(connection) as with_mw:
        client.get("/")
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    with CaptureQueriesContext(connection) as without_mw:
        client.get("/")

    assert grant_queries(with_mw) == []
    saml_jit_tables = [q["sql"] for q in with_mw.captured_queries if "saml_jit_" in q["sql"]]
    assert saml_jit_tables == []
    # The only possible extra is the session read the middleware triggers
    # (this test view never touches the session itself).
    extra = len(with_mw.captured_queries) - len(without_mw.captured_queries)
    assert extra <= 1, with_mw.captured_queries
    assert all("django_session" in q["sql"] for q in with_mw.captured_queries)
    print(
        f"\nno check due: {len(with_mw.captured_queries)} queries with the middleware, "
        f"{len(without_mw.captured_queries)} without, {len(grant_queries(with_mw))} on saml_jit_grant"
    )


def test_middleware_cost_of_a_due_check_with_nothing_expired(browser, groups, with_middleware):
    login(browser, "ops")
    client = browser.client
    client.get("/")
    future = timezone.now() + timedelta(seconds=RECHECK + 1)  # check due, grant (TTL 3600) still live
    with mock.patch("django.utils.timezone.now", return_value=future), CaptureQueriesContext(connection) as due:
        client.get("/")
    assert len(grant_queries(due)) == 1
    (sql,) = grant_queries(due)
    assert sql.lstrip().upper().startswith("SELECT")
    assert not [q for q in due.captured_queries if "saml_jit_event" in q["sql"]]
    assert names(alice()) == {"Ops"}
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " ".join(str(row) for row in cursor.fetchall())
        assert "saml_jit_grant_user_expiry" in plan, plan
    print(f"\ndue check, nothing expired: {len(due.captured_queries)} queries, 1 on saml_jit_grant: {sql}")


def test_middleware_schedules_the_next_check_at_the_next_expiry(browser, groups, with_middleware):
    login(browser, "ops")
    Grant.objects.update(expires_at=timezone.now() + timedelta(seconds=30))
    browser.client.get("/")
    next_check = timezone.datetime.fromisoformat(browser.client.session[SESSION_NEXT_CHECK])
    assert next_check == Grant.objects.get().expires_at

    at_expiry = Grant.objects.get().expires_at
    with mock.patch("django.utils.timezone.now", return_value=at_expiry):
        browser.client.get("/")
    assert not Grant.objects.exists()
    assert names(alice()) == set()


def test_middleware_on_login_request_does_not_break_acs(browser, groups, with_middleware):
    response = login(browser, "ops", "admins")
    assert response["Location"] == "/"
    assert alice().is_staff


# --------------------------------------------------------------------------
# Admin


needs_user_admin = pytest.mark.skipif(
    User not in admin.site._registry, reason="no admin registered for this user model"
)


@pytest.fixture
def admin_client(db):
    if EMAIL_KEYED:
        root = User.objects.create_superuser(email="root@example.com", password="x")
    else:
        root = User.objects.create_superuser(username="root", email="root@example.com", password="x")
    client = Client()
    client.force_login(root)
    return client


def _user_admin_url(name, *args):
    return reverse(f"admin:{User._meta.app_label}_{User._meta.model_name}_{name}", args=args)


@needs_user_admin
def test_user_change_page_shows_grants_inline(browser, groups, admin_client):
    login(browser, "ops", "admins", assertion_id="_inline-1")
    response = admin_client.get(_user_admin_url("change", alice().pk))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="saml_grants-heading"' in content
    assert "Grants from SAML" in content
    (inline,) = [f for f in response.context["inline_admin_formsets"] if f.formset.model is Grant]
    shown = {(form.instance.kind, form.instance.group_id) for form in inline.formset.forms}
    assert shown == {(GrantKind.GROUP, groups["Ops"].pk), (GrantKind.STAFF, None)}
    assert "_inline-1" in content
    assert IDP_A.entity_id in content
    assert "Ops" in content
    assert "staff status" in content


@needs_user_admin
def test_user_changelist_filter_by_managed_group(browser, groups, admin_client):
    login(browser, "eng")
    login(browser, "ops", name_id="subject-bob", attributes=person(email="bob@example.org", isMemberOf=["ops"]))
    carol = local_user(email="carol@example.org", username="carol")
    carol.groups.add(groups["Engineering"])  # by hand: not managed

    url = _user_admin_url("changelist")
    response = admin_client.get(url, {"saml_group": groups["Engineering"].pk})
    assert response.status_code == 200
    listed = {user.pk for user in response.context["cl"].result_list}
    assert listed == {alice().pk}

    response = admin_client.get(url, {"saml_group": groups["Ops"].pk})
    assert {user.pk for user in response.context["cl"].result_list} == {User.objects.get(email="bob@example.org").pk}


@needs_user_admin
def test_managed_group_filter_lists_each_group_once(browser, groups, admin_client):
    login(browser, "eng")
    login(browser, "eng", name_id="subject-bob", attributes=person(email="bob@example.org", isMemberOf=["eng"]))
    response = admin_client.get(_user_admin_url("changelist"))
    assert response.status_code == 200
    assert response.content.decode().count(f"?saml_group={groups['Engineering'].pk}") == 1


def test_grant_admin_expire_now(browser, deploy_perm, admin_client):
    login(browser, "ops", "eng", assertion_id="_expire-now")
    pk = alice().pk
    ops = Grant.objects.get(group__name="Ops")
    assert ops.expires_at > timezone.now()  # not expired by time
    assert User.objects.get(pk=pk).has_perm(deploy_perm)

    response = admin_client.post(
        reverse("admin:saml_jit_grant_changelist"),
        {"action": "expire_now", "_selected_action": [ops.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 grant(s) expired." in response.content.decode()
    user = User.objects.get(pk=pk)
    assert names(user) == {"Engineering"}
    assert not user.has_perm(deploy_perm)
    assert grant_targets(user) == {(IDP_A.entity_id, "Engineering")}
    (expired,) = events(kind=EventKind.EXPIRED)
    assert expired.user_id == pk
    assert expired.assertion_id == "_expire-now"
    assert expired.diff == {"groups": {"added": [], "removed": ["Ops"]}}


def test_grant_admin_changelist(browser, groups, admin_client):
    login(browser, "ops")
    response = admin_client.get(reverse("admin:saml_jit_grant_changelist"))
    assert response.status_code == 200
    assert "Ops" in response.content.decode()


def test_grant_admin_search(browser, groups, admin_client):
    login(browser, "ops", assertion_id="_search-me")
    response = admin_client.get(reverse("admin:saml_jit_grant_changelist"), {"q": "_search-me"})
    assert response.status_code == 200
    assert [g.pk for g in response.context["cl"].result_list] == [Grant.objects.get().pk]
