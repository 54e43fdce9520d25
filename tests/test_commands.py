"""Tests for the management commands ``saml_jit_dry_run`` and ``saml_jit_expire_grants``.

The dry run must print what a login would do and write nothing; the state it
previews against is set up through real logins (signed responses through the
real ACS view).
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.utils import timezone

from saml_jit.models import FederatedIdentity, Grant, GrantKind, ProvisioningEvent
from tests.conftest import person
from tests.federation import IDP_A, IDP_B

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
SUBJECT = "subject-alice-0001"
TTL = 3600

GROUPS = {
    "GROUP_MAP": {"eng": ["Engineering"], "ops": ["Ops"], "sales": ["Sales"]},
    "PRIVILEGED_GROUPS": ["Ops"],
    "STAFF_GROUPS": ["admins"],
    "SUPERUSER_GROUPS": ["root"],
    "PRIVILEGE_TTL": TTL,
}

ALICE = {
    "mail": "alice@example.org",
    "givenName": "Alice",
    "sn": "Liddell",
}


@pytest.fixture
def groups(settings):
    settings.SAML_JIT = dict(GROUPS)
    return {name: Group.objects.create(name=name) for name in ("Engineering", "Ops", "Sales")}


def snapshot():
    """Everything a login could write."""
    return {
        "users": list(User.objects.order_by("pk").values()),
        "identities": list(FederatedIdentity.objects.order_by("pk").values()),
        "events": ProvisioningEvent.objects.count(),
        "grants": list(Grant.objects.order_by("pk").values()),
        "groups": sorted(Group.objects.values_list("name", flat=True)),
        "memberships": sorted(User.groups.through.objects.values_list("pk", flat=True)),
    }


def dry_run(tmp_path, attributes, *args, idp=IDP_A.entity_id, name_id=SUBJECT):
    path = tmp_path / "attributes.json"
    path.write_text(json.dumps(attributes), encoding="utf-8")
    argv = [idp, str(path), *args]
    if name_id is not None:
        argv += ["--name-id", name_id]
    before = snapshot()
    out = io.StringIO()
    call_command("saml_jit_dry_run", *argv, stdout=out)
    assert snapshot() == before, "the dry run wrote something"
    return json.loads(out.getvalue())


def real_login(browser, *member_of, **kwargs):
    browser.client.logout()
    attributes = kwargs.pop("attributes", None) or person(isMemberOf=list(member_of))
    response = browser.login(name_id=kwargs.pop("name_id", SUBJECT), attributes=attributes, **kwargs)
    assert response.status_code == 302, response.content[:2000]


def near(iso: str, seconds: int) -> bool:
    moment = datetime.fromisoformat(iso)
    expected = timezone.now() + timedelta(seconds=seconds)
    return abs((moment - expected).total_seconds()) < 60


# --------------------------------------------------------------------------
# saml_jit_dry_run


def test_dry_run_create(tmp_path, groups):
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": ["eng", "ops", "admins", "unmapped"]})

    assert result["action"] == "create"
    assert result["subject"] == SUBJECT
    assert result["user"] is None
    assert result["active"] is True
    diff = result["diff"]
    assert diff["email"] == [None, "alice@example.org"]
    assert diff["first_name"] == [None, "Alice"]
    assert diff["last_name"] == [None, "Liddell"]
    if not EMAIL_KEYED:
        assert diff["username"] == [None, "alice"]
    assert diff["groups"] == {"added": ["Engineering", "Ops"], "removed": []}
    assert diff["is_staff"] == [False, True]
    assert set(result["grants"]) == {"Engineering", "Ops", "is_staff"}
    assert result["grants"]["Engineering"] is None
    assert near(result["grants"]["Ops"], TTL)
    assert near(result["grants"]["is_staff"], TTL)
    assert result["revoked_grants"] == []
    assert not User.objects.exists()


def test_dry_run_create_notes_refused_superuser(tmp_path, groups):
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": "root"})
    assert "is_superuser" not in result["diff"]
    assert "superuser asserted but ALLOW_SUPERUSER is off" in result["notes"]


def test_dry_run_username_avoids_taken_names(tmp_path, groups):
    if EMAIL_KEYED:
        pytest.skip("the username is the email")
    User.objects.create_user(username="alice", email="someone@example.org")
    result = dry_run(tmp_path, ALICE)
    assert result["diff"]["username"] == [None, "alice2"]


def test_dry_run_update(tmp_path, browser, groups):
    real_login(browser, "eng", "ops", "admins")
    user = User.objects.get()
    user.groups.add(groups["Sales"])  # by hand

    result = dry_run(tmp_path, {**ALICE, "sn": "Pleasance", "isMemberOf": ["ops", "sales"]})

    assert result["action"] == "update"
    assert result["user"] == user.get_username()
    assert result["diff"] == {
        "last_name": ["Liddell", "Pleasance"],
        "groups": {"added": [], "removed": ["Engineering"]},
        "is_staff": [True, False],
    }
    # Ops is refreshed (new expiry); Sales is hand-assigned: no grant.
    assert set(result["grants"]) == {"Ops"}
    assert near(result["grants"]["Ops"], TTL)
    assert sorted(result["revoked_grants"]) == ["Engineering", "is_staff"]
    # ... and nothing happened for real.
    user = User.objects.get()
    assert user.last_name == "Liddell" and user.is_staff
    assert set(user.groups.values_list("name", flat=True)) == {"Engineering", "Ops", "Sales"}


def test_dry_run_unchanged_login(tmp_path, browser, groups):
    real_login(browser, "eng")
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": ["eng"]})
    assert result["action"] == "update"
    assert result["diff"] == {}
    assert result["grants"] == {"Engineering": None}


def test_dry_run_overage(tmp_path, browser, groups):
    real_login(browser, "eng")
    result = dry_run(tmp_path, {**ALICE, "http://schemas.microsoft.com/claims/groups.link": "https://graph.example/x"})
    assert result["diff"] == {}
    assert result["grants"] == {}
    assert result["revoked_grants"] == []
    assert any("overage" in note for note in result["notes"])


def test_dry_run_with_create_groups_creates_no_group(tmp_path, settings):
    settings.SAML_JIT = {"GROUP_MAP": {"eng": ["Engineering"]}, "CREATE_GROUPS": True}
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": ["eng"]})
    assert result["diff"]["groups"] == {"added": ["Engineering"], "removed": []}
    assert not Group.objects.exists()


def test_dry_run_link(tmp_path, groups, settings):
    settings.SAML_JIT = {**GROUPS, "LINK_BY_EMAIL": True}
    if EMAIL_KEYED:
        User.objects.create_user(email="alice@example.org")
    else:
        User.objects.create_user(username="alice", email="alice@example.org")
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": ["eng"]})
    assert result["action"] == "link"
    assert result["diff"]["groups"] == {"added": ["Engineering"], "removed": []}


def test_dry_run_deny_missing_required_group(tmp_path, groups, settings):
    settings.SAML_JIT = {**GROUPS, "REQUIRED_GROUPS": ["members"]}
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": ["eng"]})
    assert result["action"] == "deny"
    assert result["reason_code"] == "missing_required_group"
    assert result["message"]


def test_dry_run_deny_for_existing_account(tmp_path, browser, groups, settings):
    real_login(browser, "eng")
    settings.SAML_JIT = {**GROUPS, "REQUIRED_GROUPS": ["members"]}
    result = dry_run(tmp_path, {**ALICE, "isMemberOf": ["eng"]})
    assert (result["action"], result["reason_code"]) == ("deny", "missing_required_group")


def test_dry_run_deny_transient_name_id(tmp_path, groups):
    result = dry_run(tmp_path, ALICE, "--transient")
    assert (result["action"], result["reason_code"]) == ("deny", "transient_name_id")


def test_dry_run_deny_without_name_id(tmp_path, groups):
    result = dry_run(tmp_path, ALICE, name_id=None)
    assert result["action"] == "deny"


def test_dry_run_uses_per_idp_settings(tmp_path, groups, settings):
    settings.SAML_JIT = {**GROUPS, "IDPS": {IDP_B.entity_id: {"CREATE_USERS": False}}}
    assert dry_run(tmp_path, ALICE, idp=IDP_B.entity_id)["reason_code"] == "creation_disabled"
    assert dry_run(tmp_path, ALICE, idp=IDP_A.entity_id)["action"] == "create"


def test_dry_run_output_is_json_with_sorted_keys(tmp_path, groups):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(ALICE), encoding="utf-8")
    out = io.StringIO()
    call_command("saml_jit_dry_run", IDP_A.entity_id, str(path), "--name-id", SUBJECT, stdout=out)
    parsed = json.loads(out.getvalue())
    assert list(parsed) == sorted(parsed)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "Cannot read"),
        ("", "Cannot read"),
        ('["mail", "alice@example.org"]', "must hold a JSON object"),
        ('"alice"', "must hold a JSON object"),
        (b"\xff\xfe{}", "Cannot read"),
    ],
)
def test_dry_run_bad_json(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        call_command("saml_jit_dry_run", IDP_A.entity_id, str(path), "--name-id", SUBJECT, stdout=io.StringIO())
    assert not ProvisioningEvent.objects.exists()


def test_dry_run_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command(
            "saml_jit_dry_run", IDP_A.entity_id, str(tmp_path / "nope.json"), "--name-id", SUBJECT, stdout=io.StringIO()
        )


# --------------------------------------------------------------------------
# saml_jit_expire_grants (the end-to-end expiry is in test_grants.py)


def test_expire_grants_with_nothing_to_do(browser, groups):
    real_login(browser, "ops", "admins")
    out = io.StringIO()
    call_command("saml_jit_expire_grants", stdout=out)
    assert "0 expired grant(s) removed." in out.getvalue()
    assert Grant.objects.count() == 2


def test_expire_grants_several_users_and_kinds(browser, groups):
    real_login(browser, "ops", "admins")
    real_login(
        browser,
        "ops",
        "eng",
        name_id="subject-bob",
        attributes=person(email="bob@example.org", isMemberOf=["ops", "eng"]),
    )
    Grant.objects.exclude(expires_at=None).update(expires_at=timezone.now() - timedelta(seconds=1))

    out = io.StringIO()
    call_command("saml_jit_expire_grants", "--dry-run", stdout=out)
    assert "3 expired grant(s) would be removed." in out.getvalue()

    out = io.StringIO()
    call_command("saml_jit_expire_grants", stdout=out)
    assert "3 expired grant(s) removed." in out.getvalue()
    assert list(Grant.objects.values_list("kind", "group__name")) == [(GrantKind.GROUP, "Engineering")]
    assert not User.objects.filter(is_staff=True).exists()
    assert not groups["Ops"].user_set.exists()
