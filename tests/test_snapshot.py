"""The access snapshot (saml_jit.review.access, saml_jit.admin.snapshot, ``saml_jit_export snapshot``).

Accounts are crafted row by row so every source of access is there once: a
SAML group grant with an expiry, a SCIM-managed group, a group an
administrator added, staff from SAML, a superuser made by hand, an account
without identity, usable and unusable passwords.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from datetime import timezone as tz

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from saml_jit.admin.snapshot import AccessSnapshotAdmin
from saml_jit.models import AccountLifecycle, FederatedIdentity, Grant, GrantKind, ScimGroup
from saml_jit.review import access
from saml_jit.review.exports import SNAPSHOT_CSV_FIELDS, SNAPSHOT_JSON_FIELDS
from tests.federation import IDP_A, IDP_B

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
PAGE = "admin:saml_jit_accesssnapshot_changelist"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=tz.utc)
EXPIRES = T0 + timedelta(hours=8)


def account(name: str, password: str | None = None, **extra):
    fields = {User.USERNAME_FIELD: f"{name}@example.org" if EMAIL_KEYED else name}
    if not EMAIL_KEYED:
        fields["email"] = f"{name}@example.org"
    user = User.objects.create_user(**fields, password=password, **extra)
    if password is None:
        user.set_unusable_password()
        user.save()
    return user


def name_of(user) -> str:
    return user.get_username()


def identity(user, idp=IDP_A, subject=None, asserted=True):
    return FederatedIdentity.objects.create(
        user=user,
        idp_entity_id=idp.entity_id,
        subject=subject or f"subject-{user.pk}",
        bound_at=T0,
        first_asserted_at=T0 if asserted else None,
        last_asserted_at=T0 + timedelta(days=3) if asserted else None,
    )


def lifecycle(user, created_by="jit", **extra):
    return AccountLifecycle.objects.create(user=user, created_by=created_by, since=T0, **extra)


@pytest.fixture
def people(settings):
    settings.SAML_JIT = {"PRIVILEGED_GROUPS": ["Ops"]}
    ops, eng, hand = (Group.objects.create(name=n) for n in ("Ops", "Engineering", "Handpicked"))
    ScimGroup.objects.create(group=eng, idp_entity_id=IDP_A.entity_id)

    alice = account("alice", is_staff=True)  # JIT from IdP A: SAML Ops (expires), SCIM Engineering, manual, staff
    identity(alice, subject="subject-alice")
    lifecycle(alice, state="active", source="saml")
    alice.groups.add(ops, eng, hand)
    Grant.objects.create(
        user=alice, idp_entity_id=IDP_A.entity_id, group=ops, granted_at=T0, last_asserted_at=T0, expires_at=EXPIRES
    )
    Grant.objects.create(
        user=alice, idp_entity_id=IDP_A.entity_id, kind=GrantKind.STAFF, granted_at=T0, last_asserted_at=T0
    )

    bob = account("bob", password="pw", is_superuser=True)  # a superuser by hand, IdP B, usable password
    identity(bob, idp=IDP_B, subject="subject-bob")
    lifecycle(bob, created_by="local", state="active", source="admin")

    carol = account("carol", password="pw")  # no identity, no lifecycle row: a local account

    dave = account("dave", is_active=False)  # SCIM-created, deprovisioned, identity never asserted
    identity(dave, subject="subject-dave", asserted=False)
    lifecycle(dave, created_by="scim", state="deprovisioned", source="scim", reason_code="scim_deactivated")
    dave.groups.add(eng)
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave}


def by_name(accounts):
    return {account.username: account for account in accounts}


def reviewer_client(name, perms=("view_accesssnapshot",)):
    user = account(name, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def downloaded(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode("utf-8")


def command(*args) -> str:
    out = io.StringIO()
    call_command("saml_jit_export", "snapshot", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --------------------------------------------------------------------------
# What the snapshot says


def test_the_snapshot_says_who_has_what_why_and_since_when(people):
    seen = by_name(access.snapshot())
    alice, bob, carol, dave = (seen[name_of(people[n])] for n in ("alice", "bob", "carol", "dave"))

    assert (alice.state, alice.state_source, alice.state_since, alice.created_by) == ("active", "saml", T0, "jit")
    assert alice.identities == [
        {
            "idp_entity_id": IDP_A.entity_id,
            "subject": "subject-alice",
            "bound_at": T0,
            "first_asserted_at": T0,
            "last_asserted_at": T0 + timedelta(days=3),
        }
    ]
    assert alice.last_evidence == T0 + timedelta(days=3)
    assert not alice.usable_password
    held = {(h.kind, h.group): h for h in alice.access}
    assert set(held) == {("group", "Engineering"), ("group", "Handpicked"), ("group", "Ops"), ("staff", "")}
    ops = held["group", "Ops"]
    assert (ops.source, ops.idp_entity_id, ops.granted_at, ops.last_asserted_at, ops.expires_at, ops.privileged) == (
        "saml",
        IDP_A.entity_id,
        T0,
        T0,
        EXPIRES,
        True,
    )
    assert (held["group", "Engineering"].source, held["group", "Engineering"].privileged) == ("scim", False)
    assert (held["group", "Handpicked"].source, held["group", "Handpicked"].granted_at) == ("manual", None)
    assert (held["staff", ""].source, held["staff", ""].idp_entity_id, held["staff", ""].privileged) == (
        "saml",
        IDP_A.entity_id,
        True,
    )

    assert [(h.kind, h.source) for h in bob.access] == [("superuser", "manual")]
    assert bob.usable_password and bob.created_by == "local"

    assert (carol.identities, carol.access, carol.last_evidence) == ([], [], None)
    assert (carol.state, carol.created_by, carol.usable_password) == ("active", "local", True)

    assert (dave.state, dave.state_reason, dave.state_source, dave.created_by) == (
        "deprovisioned",
        "scim_deactivated",
        "scim",
        "scim",
    )
    assert dave.identities[0]["first_asserted_at"] is None and dave.last_evidence is None
    assert [(h.group, h.source) for h in dave.access] == [("Engineering", "scim")]


def test_filters_by_idp_group_and_privilege(people):
    names = {key: name_of(user) for key, user in people.items()}

    def chosen(**filters):
        return set(by_name(access.snapshot(access.accounts(**filters))))

    assert chosen(idp=IDP_A.entity_id) == {names["alice"], names["dave"]}
    assert chosen(idp=IDP_B.entity_id) == {names["bob"]}
    assert chosen(group="Engineering") == {names["alice"], names["dave"]}
    assert chosen(group="Handpicked") == {names["alice"]}
    assert chosen(privileged_only=True) == {names["alice"], names["bob"]}
    assert chosen(idp=IDP_A.entity_id, privileged_only=True) == {names["alice"]}
    assert chosen(group="Engineering", privileged_only=True) == {names["alice"]}


# --------------------------------------------------------------------------
# The admin page


def test_the_page_shows_every_account_with_its_access(people, admin_client):
    response = admin_client.get(reverse(PAGE))
    assert response.status_code == 200
    page = response.content.decode()
    for user in people.values():
        assert name_of(user) in page
    for text in (
        "subject-alice",
        "SAML grant from " + IDP_A.entity_id,
        "SCIM-managed group",
        "manual (an administrator)",
        "Handpicked",
        "superuser",
        "staff",
        "scim_deactivated",
        "no federated identity",
        "never asserted",
        "first SAML login (JIT)",
        "5 accounts",  # and the admin_client's superuser
    ):
        assert text in page, text
    if admin.site.is_registered(User):
        change = reverse(f"admin:{User._meta.app_label}_{User._meta.model_name}_change", args=[people["alice"].pk])
        assert f'<a href="{change}">{name_of(people["alice"])}</a>' in page
    assert "_export=csv" in page and "_export=jsonl" in page


def test_the_page_filters(people, admin_client):
    names = {key: name_of(user) for key, user in people.items()}

    def shown(**query):
        rows = admin_client.get(reverse(PAGE), query).context["page"].rows
        return {key for key, name in names.items() if name in {row.account.username for row in rows}}

    assert shown() == {"alice", "bob", "carol", "dave"}
    assert shown(idp=IDP_B.entity_id) == {"bob"}
    assert shown(group="Engineering") == {"alice", "dave"}
    assert shown(privileged="1") == {"alice", "bob"}
    assert shown(idp=IDP_A.entity_id, privileged="1") == {"alice"}
    page = admin_client.get(reverse(PAGE)).content.decode()
    for option in (IDP_A.entity_id, IDP_B.entity_id, "Engineering", "Handpicked", "Ops"):
        assert f'<option value="{option}"' in page


def test_the_page_pages_by_primary_key_without_offset(people, admin_client, monkeypatch):
    monkeypatch.setattr(AccessSnapshotAdmin, "list_per_page", 3)
    extra = [account(f"zed{i}") for i in range(4)]  # 8 accounts in all (and the admin)
    everyone = list(User.objects.order_by("pk").values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        first = admin_client.get(reverse(PAGE))
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    assert first.context["page"].next_after == everyone[2]
    assert [r.account.user_id for r in first.context["page"].rows] == everyone[:3]

    second = admin_client.get(reverse(PAGE), {"after": everyone[2]})
    assert [r.account.user_id for r in second.context["page"].rows] == everyone[3:6]
    assert second.context["previous_query"] == "?"  # back to the first page
    last = admin_client.get(reverse(PAGE), {"after": everyone[5]})
    assert [r.account.user_id for r in last.context["page"].rows] == everyone[6:]
    assert last.context["next_query"] == ""
    assert last.context["previous_query"] == f"?after={everyone[2]}"
    assert name_of(extra[-1]) in last.content.decode()
    assert admin_client.get(reverse(PAGE), {"after": "not-a-pk"}).context["page"].first


def test_the_page_needs_the_view_permission(people):
    assert reviewer_client("nosy", perms=()).get(reverse(PAGE)).status_code == 403
    allowed = reviewer_client("auditor")
    assert allowed.get(reverse(PAGE)).status_code == 200
    assert allowed.get(reverse(PAGE), {"_export": "csv"}).status_code == 200


def test_the_page_adds_changes_and_deletes_nothing(admin_client):
    assert admin_client.get("/admin/saml_jit/accesssnapshot/add/").status_code == 404
    assert admin_client.get(reverse(PAGE), {"_export": "xml"}).status_code == 400


# --------------------------------------------------------------------------
# Exports: admin and command, same content


def test_csv_is_one_row_per_account_and_access_item(people, admin_client):
    response = admin_client.get(reverse(PAGE), {"_export": "csv"})
    assert response["Content-Disposition"] == 'attachment; filename="saml_jit_access_snapshot.csv"'
    rows = list(csv.DictReader(io.StringIO(downloaded(response))))
    assert tuple(rows[0]) == SNAPSHOT_CSV_FIELDS
    alice = [r for r in rows if r["username"] == name_of(people["alice"])]
    assert sorted((r["access_kind"], r["access_group"], r["access_source"]) for r in alice) == [
        ("group", "Engineering", "scim"),
        ("group", "Handpicked", "manual"),
        ("group", "Ops", "saml"),
        ("staff", "", "saml"),
    ]
    ops = next(r for r in alice if r["access_group"] == "Ops")
    assert (ops["access_expires_at"], ops["access_granted_at"]) == (EXPIRES.isoformat(), T0.isoformat())
    assert json.loads(ops["identities"])[0]["subject"] == "subject-alice"
    carol = [r for r in rows if r["username"] == name_of(people["carol"])]
    assert len(carol) == 1
    assert all(carol[0][field] == "" for field in SNAPSHOT_CSV_FIELDS if field.startswith("access_"))
    assert carol[0]["usable_password"] == "True" and carol[0]["identities"] == "[]"


def test_json_lines_are_one_object_per_account(people, admin_user, admin_client):
    people["admin"] = admin_user  # a superuser too
    response = admin_client.get(reverse(PAGE), {"_export": "jsonl", "privileged": "1"})
    objects = [json.loads(line) for line in downloaded(response).splitlines()]
    objects = [o for o in objects if o["user_id"] != people["admin"].pk]
    assert [o["username"] for o in objects] == [name_of(people["alice"]), name_of(people["bob"])]
    alice = objects[0]
    assert set(alice) == set(SNAPSHOT_JSON_FIELDS)
    ops = next(held for held in alice["access"] if held["group"] == "Ops")
    assert ops == {
        "kind": "group",
        "group": "Ops",
        "source": "saml",
        "idp_entity_id": IDP_A.entity_id,
        "granted_at": T0.isoformat(),
        "last_asserted_at": T0.isoformat(),
        "expires_at": EXPIRES.isoformat(),
        "privileged": True,
    }
    assert alice["identities"][0]["last_asserted_at"] == (T0 + timedelta(days=3)).isoformat()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(
    "query, args",
    [
        ({}, []),
        ({"idp": IDP_A.entity_id}, ["--idp", IDP_A.entity_id]),
        ({"group": "Engineering", "privileged": "1"}, ["--group", "Engineering", "--privileged-only"]),
    ],
)
def test_the_admin_and_the_command_export_the_same(people, admin_client, tmp_path, fmt, query, args):
    from_admin = downloaded(admin_client.get(reverse(PAGE), {**query, "_export": fmt}))
    assert from_admin.strip()
    assert command(*args, "--format", fmt) == from_admin
    target = tmp_path / f"snapshot.{fmt}"
    command(*args, "--format", fmt, "--output", str(target))
    assert target.read_bytes().decode("utf-8") == from_admin
    assert not (tmp_path / f"snapshot.{fmt}.partial").exists()


def test_snapshot_export_neutralises_formulas(admin_client):
    user = account("=HYPERLINK(1)" if not EMAIL_KEYED else "x")
    FederatedIdentity.objects.create(user=user, idp_entity_id=IDP_A.entity_id, subject="@SUM(1+1)")
    Group.objects.create(name="+cmd").user_set.add(user)
    rows = list(csv.reader(io.StringIO(downloaded(admin_client.get(reverse(PAGE), {"_export": "csv"})))))
    for row in rows[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@"), cell
    assert any(cell == "'+cmd" for row in rows for cell in row)


def test_snapshot_command_errors(people):
    with pytest.raises(CommandError, match="no group named 'Nobody'"):
        command("--group", "Nobody")
    with pytest.raises(CommandError, match=re.escape("no IdP 'https://unknown.example'")):
        command("--idp", "https://unknown.example")
    with pytest.raises(CommandError, match="invalid choice: 'xml'"):
        command("--format", "xml")
