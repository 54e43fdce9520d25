# ruff: noqa: F811 - fixtures are imported from tests.scim_helpers
"""SCIM 2.0: every verb on Users and Groups, filters, paging, PATCH dialects, errors, scoping."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from saml_jit.models import EventKind, EventSource, FederatedIdentity, ProvisioningEvent, ScimGroup
from tests.federation import IDP_A
from tests.scim_helpers import (  # noqa: F401 - fixtures
    EMAIL_KEYED,
    GROUP_SCHEMA,
    USER_SCHEMA,
    User,
    _clear_cache,
    assert_error,
    patch,
    scim,
    scim_b,
    user_name,
    user_payload,
    username_model_only,
)

pytest.importorskip("scim2_server", reason="SCIM needs the scim extra (Python 3.11+)")
pytestmark = pytest.mark.django_db


def scim_events(kind=None):
    events = ProvisioningEvent.objects.filter(source=EventSource.SCIM).order_by("id")
    return list(events.filter(kind=kind) if kind else events)


# --------------------------------------------------------------------------
# Discovery


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/Schemas", "/ResourceTypes"])
def test_discovery_endpoints(scim, path):
    response = scim.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/scim+json"


def test_service_provider_config_announces_what_is_supported(scim):
    config = scim.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["changePassword"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_published_user_schema_has_no_privileged_attribute(scim):
    schema = scim.get(f"/Schemas/{USER_SCHEMA}").json()
    names = {attribute["name"] for attribute in schema["attributes"]}
    assert names == {"userName", "name", "displayName", "active", "emails", "groups"}
    assert not names & {"password", "roles", "entitlements", "x509Certificates"}


# --------------------------------------------------------------------------
# Users: create, read


def test_post_creates_user_identity_and_event(scim):
    body = scim.create_user()

    user = User.objects.get()
    assert body["id"] == str(user.pk)
    assert body["userName"] == user.get_username() == user_name()
    assert body["externalId"] == "subject-alice-0001"
    assert body["active"] is True
    assert body["emails"] == [{"value": "alice@example.org", "type": "work", "primary": True}]
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{user.pk}")
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Liddell", "alice@example.org")
    assert not user.has_usable_password()
    identity = FederatedIdentity.objects.get()
    assert (identity.user, identity.idp_entity_id, identity.subject) == (user, IDP_A.entity_id, "subject-alice-0001")
    (event,) = scim_events()
    assert (event.kind, event.actor, event.user, event.idp_entity_id) == (
        EventKind.CREATED,
        "okta",
        user,
        IDP_A.entity_id,
    )
    assert event.subject == "subject-alice-0001"
    assert event.diff["first_name"] == [None, "Alice"]


def test_get_one_user(scim):
    created = scim.create_user()
    response = scim.get(f"/Users/{created['id']}")
    assert response.status_code == 200
    assert response.json()["userName"] == user_name()


def test_get_unknown_user_is_404(scim):
    assert_error(scim.get("/Users/999999"), 404)
    assert_error(scim.get("/Users/not-a-number"), 404)


def test_privileged_and_unknown_attributes_are_ignored(scim):
    body = user_payload(
        password="hunter2hunter2",
        roles=[{"value": "admin"}],
        entitlements=[{"value": "superuser"}],
        isSuperuser=True,
        is_staff=True,
        userPermissions=["auth.delete_user"],
    )
    body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = {"department": "R&D"}
    body["schemas"].append("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    response = scim.post("/Users", body)

    assert response.status_code == 201, response.content
    user = User.objects.get()
    assert not user.is_staff and not user.is_superuser
    assert not user.has_usable_password()
    assert not user.user_permissions.exists()
    assert "password" not in response.json()


def test_patch_cannot_set_privileges_or_password(scim):
    created = scim.create_user()
    operations = patch(
        {"op": "replace", "value": {"isSuperuser": True, "is_staff": True, "password": "hunter2hunter2"}},
        {"op": "add", "path": "roles", "value": [{"value": "admin"}]},
    )
    response = scim.patch(f"/Users/{created['id']}", operations)
    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert not user.is_staff and not user.is_superuser and not user.has_usable_password()


# --------------------------------------------------------------------------
# Users: list, filter, paging


@pytest.fixture
def three_users(scim):
    return [
        scim.create_user("alice", "subject-alice-0001"),
        scim.create_user("bob", "subject-bob-0002"),
        scim.create_user("carol", "subject-carol-0003"),
    ]


def listed(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [resource["userName"] for resource in response.json()["Resources"]]


def test_list_all(scim, three_users):
    response = scim.get("/Users")
    body = response.json()
    assert body["totalResults"] == 3
    assert listed(response) == [user_name("alice"), user_name("bob"), user_name("carol")]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('userName eq "{bob}"', ["bob"]),
        ('userName eq "{BOB}"', ["bob"]),  # userName is not caseExact
        ('externalId eq "subject-carol-0003"', ["carol"]),
        ('externalId eq "SUBJECT-CAROL-0003"', []),  # externalId is caseExact
        ('emails[type eq "work"].value eq "alice@example.org"', ["alice"]),
        ('emails[type eq "work" and value eq "bob@example.org"]', ["bob"]),
        ('emails[type eq "home"].value eq "alice@example.org"', []),
        ('emails.value eq "carol@example.org"', ["carol"]),
        ('userName eq "{alice}" or externalId eq "subject-bob-0002"', ["alice", "bob"]),
        ('userName eq "{alice}" and externalId eq "subject-bob-0002"', []),
        ('name.givenName sw "Ca"', ["carol"]),
        ('not (userName eq "{alice}") and active eq true', ["bob", "carol"]),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "{alice}"', ["alice"]),
        ("userName pr", ["alice", "bob", "carol"]),
    ],
)
def test_filters(scim, three_users, filter_, expected):
    names = {"{alice}": user_name("alice"), "{bob}": user_name("bob"), "{BOB}": user_name("bob").upper()}
    for placeholder, value in names.items():
        filter_ = filter_.replace(placeholder, value)
    assert listed(scim.get("/Users", {"filter": filter_})) == [user_name(name) for name in expected]


def test_filter_on_inactive(scim, three_users):
    scim.patch(f"/Users/{three_users[1]['id']}", patch({"op": "replace", "path": "active", "value": False}))
    assert listed(scim.get("/Users", {"filter": "active eq false"})) == [user_name("bob")]


@pytest.mark.parametrize("filter_", ['userName eq "unterminated', "userName xx 1", "bogus eq 1", "(userName"])
def test_invalid_filter_is_400(scim, three_users, filter_):
    body = assert_error(scim.get("/Users", {"filter": filter_}), 400)
    assert body["scimType"] in ("invalidFilter", "invalidSyntax"), body


def test_filter_on_unsupported_attribute_is_invalid_filter(scim, three_users):
    assert_error(scim.get("/Users", {"filter": 'groups.display eq "engineering"'}), 400, "invalidFilter")
    assert_error(scim.get("/Users", {"filter": 'nickName eq "Al"'}), 400, "invalidFilter")


def test_paging(scim, three_users):
    response = scim.get("/Users", {"startIndex": 2, "count": 1})
    body = response.json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (3, 2, 1)
    assert listed(response) == [user_name("bob")]
    assert listed(scim.get("/Users", {"startIndex": 3, "count": 10})) == [user_name("carol")]
    assert scim.get("/Users", {"count": 0}).json()["totalResults"] == 3


def test_page_size_caps_count(scim, three_users, settings):
    settings.SAML_JIT = {"SCIM_PAGE_SIZE": 2}
    body = scim.get("/Users", {"count": 50}).json()
    assert (body["totalResults"], body["itemsPerPage"]) == (3, 2)


# --------------------------------------------------------------------------
# Users: PUT, PATCH


def test_put_replaces_and_records_the_diff(scim):
    created = scim.create_user()
    body = user_payload(name={"givenName": "Alicia", "familyName": "Liddell"})
    body["emails"] = [{"value": "alicia@example.org", "type": "work", "primary": True}]
    if EMAIL_KEYED:
        body["userName"] = "alicia@example.org"
    response = scim.put(f"/Users/{created['id']}", body)

    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert (user.first_name, user.email) == ("Alicia", "alicia@example.org")
    event = scim_events(EventKind.UPDATED)[-1]
    assert event.diff["first_name"] == ["Alice", "Alicia"]
    assert event.diff["email"] == ["alice@example.org", "alicia@example.org"]
    assert event.actor == "okta"


def test_put_changing_external_id_rebinds_the_identity(scim):
    created = scim.create_user()
    response = scim.put(f"/Users/{created['id']}", user_payload(external_id="subject-alice-NEW"))
    assert response.status_code == 200, response.content
    assert FederatedIdentity.objects.get().subject == "subject-alice-NEW"
    assert scim_events(EventKind.UPDATED)[-1].diff["subject"] == ["subject-alice-0001", "subject-alice-NEW"]


@pytest.mark.parametrize(
    "operation",
    [
        # Entra ID: capitalised op, boolean as a string.
        {"op": "Replace", "path": "active", "value": "False"},
        # Entra ID: path-less replace.
        {"op": "Replace", "value": {"active": False}},
        {"op": "replace", "value": {"active": "False"}},
        # Okta.
        {"op": "replace", "value": {"active": False}},
        {"op": "REPLACE", "path": "active", "value": False},
    ],
)
def test_patch_deactivation_dialects(scim, operation):
    created = scim.create_user()
    response = scim.patch(f"/Users/{created['id']}", patch(operation))
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert not User.objects.get().is_active
    assert [e.kind for e in scim_events()] == [EventKind.CREATED, EventKind.DEACTIVATED]


def test_patch_entra_attribute_paths(scim):
    created = scim.create_user()
    operations = patch(
        {"op": "Replace", "path": "name.givenName", "value": "Alicia"},
        {"op": "Replace", "path": "name.familyName", "value": "  Pleasance  "},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "alicia@example.org"},
    )
    response = scim.patch(f"/Users/{created['id']}", operations)
    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert (user.first_name, user.last_name) == ("Alicia", "Pleasance")
    if not EMAIL_KEYED:
        assert user.email == "alicia@example.org"


def test_patch_unknown_user_is_404(scim):
    assert_error(scim.patch("/Users/424242", patch({"op": "replace", "path": "active", "value": False})), 404)


def test_patch_without_operations_is_400(scim):
    created = scim.create_user()
    assert_error(scim.patch(f"/Users/{created['id']}", {"schemas": [patch()["schemas"][0]]}), 400)


def test_patch_reactivation(scim):
    created = scim.create_user()
    scim.patch(f"/Users/{created['id']}", patch({"op": "replace", "path": "active", "value": False}))
    response = scim.patch(f"/Users/{created['id']}", patch({"op": "Replace", "path": "active", "value": "True"}))
    assert response.status_code == 200, response.content
    assert User.objects.get().is_active
    assert [e.kind for e in scim_events()] == [EventKind.CREATED, EventKind.DEACTIVATED, EventKind.REACTIVATED]


# --------------------------------------------------------------------------
# Users: DELETE


def test_delete_deactivates_and_keeps_the_row(scim):
    created = scim.create_user()
    response = scim.delete(f"/Users/{created['id']}")
    assert response.status_code == 204
    user = User.objects.get()
    assert not user.is_active
    assert FederatedIdentity.objects.filter(user=user).exists()
    deactivated = scim_events(EventKind.DEACTIVATED)[-1]
    assert deactivated.reason_code == "scim_delete"


def test_delete_hard_with_setting(scim, settings):
    settings.SAML_JIT = {"SCIM_HARD_DELETE": True}
    created = scim.create_user()
    response = scim.delete(f"/Users/{created['id']}")
    assert response.status_code == 204
    assert not User.objects.exists()
    assert_error(scim.get(f"/Users/{created['id']}"), 404)
    deleted = scim_events(EventKind.DELETED)[-1]
    assert deleted.user is None and deleted.username == user_name()


# --------------------------------------------------------------------------
# Users: errors


def test_duplicate_user_name_is_409(scim):
    scim.create_user()
    assert_error(scim.post("/Users", user_payload(external_id="subject-other")), 409, "uniqueness")


def test_duplicate_external_id_is_409(scim):
    scim.create_user()
    body = user_payload("bob", external_id="subject-alice-0001")
    assert_error(scim.post("/Users", body), 409, "uniqueness")


def test_existing_local_account_is_not_taken_over(scim):
    if EMAIL_KEYED:
        User.objects.create_user(email="alice@example.org")
    else:
        User.objects.create_user(username="alice", email="alice@example.org")
    assert_error(scim.post("/Users", user_payload()), 409, "uniqueness")


def test_missing_external_id_is_400(scim):
    body = assert_error(scim.post("/Users", user_payload(external_id=None)), 400, "invalidValue")
    assert "externalId" in body["detail"]


def test_user_name_as_subject(scim, settings):
    settings.SAML_JIT = {"SCIM_SUBJECT_ATTRIBUTE": "userName"}
    response = scim.post("/Users", user_payload(external_id=None))
    assert response.status_code == 201, response.content
    assert FederatedIdentity.objects.get().subject == user_name()


@pytest.mark.parametrize(
    ("change", "label"),
    [
        ({"externalId": "subject\x00alice"}, "externalId"),
        ({"externalId": "subject\u200balice"}, "externalId"),
        ({"externalId": " subject-alice"}, "externalId"),
        ({"externalId": "x" * 300}, "externalId"),
        pytest.param(
            {"emails": [{"value": "not-an-email", "type": "work"}]},
            "emails",
            marks=pytest.mark.skipif(EMAIL_KEYED, reason="userName is the email"),
        ),
        ({"name": {"givenName": "Al\x07ice"}}, "name"),
    ],
)
def test_invalid_values_are_400(scim, change, label):
    body = assert_error(scim.post("/Users", user_payload(**change)), 400, "invalidValue")
    assert label in body["detail"]
    assert not User.objects.exists()


@username_model_only
@pytest.mark.parametrize("bad", ["al ice", "\u0430lice", "alice\u200d"])
def test_invalid_user_names_are_400(scim, bad):
    assert_error(scim.post("/Users", user_payload(userName=bad)), 400, "invalidValue")


def test_display_names_are_normalised_like_saml(scim):
    scim.create_user(name={"givenName": "  Alice  ", "familyName": "L" * 400})
    user = User.objects.get()
    assert user.first_name == "Alice"
    assert len(user.last_name) == User._meta.get_field("last_name").max_length


def test_malformed_json_is_400(scim):
    assert_error(scim.post("/Users", b"{not json"), 400)


def test_body_too_large_is_413(scim, settings):
    settings.SAML_JIT = {"SCIM_MAX_BODY": 200}
    body = user_payload(name={"givenName": "A" * 500, "familyName": "B"})
    assert_error(scim.post("/Users", body), 413)
    assert not User.objects.exists()


def test_unknown_path_is_404(scim):
    assert_error(scim.get("/Nothing"), 404)


def test_bulk_is_not_implemented(scim):
    response = scim.post("/Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []})
    assert response.status_code == 501


def test_failed_request_changes_nothing(scim):
    created = scim.create_user()
    scim.create_user("bob", "subject-bob-0002")
    # The second operation fails (userName taken): the first is rolled back too.
    operations = patch(
        {"op": "replace", "path": "name.givenName", "value": "Changed"},
        {"op": "replace", "path": "userName", "value": user_name("bob")},
    )
    assert_error(scim.patch(f"/Users/{created['id']}", operations), 409)
    assert User.objects.get(pk=created["id"]).first_name == "Alice"
    assert not scim_events(EventKind.UPDATED)


# --------------------------------------------------------------------------
# Scoping per IdP


def test_client_sees_only_its_idps_users(scim, scim_b):
    alice = scim.create_user()
    bob = scim_b.create_user("bob", "subject-bob-0002")

    assert [r["id"] for r in scim.get("/Users").json()["Resources"]] == [alice["id"]]
    assert [r["id"] for r in scim_b.get("/Users").json()["Resources"]] == [bob["id"]]
    assert_error(scim.get(f"/Users/{bob['id']}"), 404)
    assert_error(scim.patch(f"/Users/{bob['id']}", patch({"op": "replace", "path": "active", "value": False})), 404)
    assert_error(scim.put(f"/Users/{bob['id']}", user_payload("bob", "subject-bob-0002")), 404)
    assert_error(scim.delete(f"/Users/{bob['id']}"), 404)
    assert User.objects.get(pk=bob["id"]).is_active
    assert listed(scim.get("/Users", {"filter": f'userName eq "{user_name("bob")}"'})) == []


def test_saml_only_users_of_the_idp_are_visible(scim):
    user = User.objects.create_user(**{User.USERNAME_FIELD: user_name("dora")})
    FederatedIdentity.objects.create(user=user, idp_entity_id=IDP_A.entity_id, subject="subject-dora")
    local = User.objects.create_user(**{User.USERNAME_FIELD: user_name("local")})
    ids = [r["id"] for r in scim.get("/Users").json()["Resources"]]
    assert ids == [str(user.pk)]
    assert str(local.pk) not in ids


def test_same_subject_at_two_idps_are_two_users(scim, scim_b):
    scim.create_user("alice", "shared")
    scim_b.create_user("bob", "shared")
    assert FederatedIdentity.objects.filter(subject="shared").count() == 2


# --------------------------------------------------------------------------
# Groups


def test_group_lifecycle_with_events(scim):
    alice = scim.create_user()
    bob = scim.create_user("bob", "subject-bob-0002")

    group = scim.create_group("engineering", members=(alice["id"],))
    assert group["displayName"] == "engineering"
    assert [m["value"] for m in group["members"]] == [alice["id"]]
    django_group = Group.objects.get(name="engineering")
    assert ScimGroup.objects.get(group=django_group).idp_entity_id == IDP_A.entity_id
    assert list(django_group.user_set.values_list("pk", flat=True)) == [int(alice["id"])] or EMAIL_KEYED

    # Okta: add members (a group's PATCH answers 204), then remove one by filter.
    response = scim.patch(
        f"/Groups/{group['id']}",
        patch({"op": "add", "path": "members", "value": [{"value": bob["id"], "display": "Bob"}]}),
    )
    assert response.status_code == 204, response.content
    body = scim.get(f"/Groups/{group['id']}").json()
    assert {m["value"] for m in body["members"]} == {alice["id"], bob["id"]}
    response = scim.patch(
        f"/Groups/{group['id']}?attributes=members",
        patch({"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}),
    )
    assert response.status_code == 200, response.content
    assert [m["value"] for m in response.json()["members"]] == [bob["id"]]

    # Entra ID: remove with a value list.
    response = scim.patch(
        f"/Groups/{group['id']}?excludedAttributes=externalId",
        patch({"op": "Remove", "path": "members", "value": [{"value": bob["id"]}]}),
    )
    assert response.status_code == 200, response.content
    assert "members" not in response.json()
    assert not django_group.user_set.exists()

    changes = [(e.user.pk if e.user else None, e.diff) for e in scim_events(EventKind.GROUPS_CHANGED)]
    assert changes == [
        (None, {"group": [None, "engineering"]}),
        (int(alice["id"]), {"groups": {"added": ["engineering"], "removed": []}}),
        (int(bob["id"]), {"groups": {"added": ["engineering"], "removed": []}}),
        (int(alice["id"]), {"groups": {"added": [], "removed": ["engineering"]}}),
        (int(bob["id"]), {"groups": {"added": [], "removed": ["engineering"]}}),
    ]
    assert {e.actor for e in scim_events(EventKind.GROUPS_CHANGED)} == {"okta"}


def test_user_resource_lists_managed_groups(scim):
    alice = scim.create_user()
    hand_made = Group.objects.create(name="hand-made")
    User.objects.get().groups.add(hand_made)
    group = scim.create_group("engineering", members=(alice["id"],))
    body = scim.get(f"/Users/{alice['id']}").json()
    assert [(g["value"], g["display"]) for g in body["groups"]] == [(group["id"], "engineering")]


def test_group_rename_okta_style_and_put(scim):
    group = scim.create_group("engineering")
    response = scim.patch(
        f"/Groups/{group['id']}", patch({"op": "replace", "value": {"id": group["id"], "displayName": "eng"}})
    )
    assert response.status_code == 204, response.content
    assert Group.objects.filter(name="eng").exists()
    alice = scim.create_user()
    response = scim.put(
        f"/Groups/{group['id']}",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "platform",
            "externalId": "g-1",
            "members": [{"value": alice["id"]}],
        },
    )
    assert response.status_code == 200, response.content
    assert response.json()["externalId"] == "g-1"
    assert Group.objects.get(pk=group["id"]).name == "platform"
    assert scim.get("/Groups", {"filter": 'displayName eq "PLATFORM"'}).json()["totalResults"] == 1
    assert scim.get("/Groups", {"filter": 'externalId eq "g-1"'}).json()["totalResults"] == 1
    assert scim.get("/Groups", {"filter": f'members.value eq "{alice["id"]}"'}).json()["totalResults"] == 1


def test_group_delete(scim):
    alice = scim.create_user()
    group = scim.create_group("engineering", members=(alice["id"],))
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert not Group.objects.filter(name="engineering").exists()
    assert_error(scim.get(f"/Groups/{group['id']}"), 404)
    assert scim_events(EventKind.GROUPS_CHANGED)[-1].diff == {"group": ["engineering", None]}


def test_existing_group_is_never_taken_over(scim):
    Group.objects.create(name="admins")
    assert_error(scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Admins"}), 409, "uniqueness")
    group = scim.create_group("engineering")
    assert_error(
        scim.patch(f"/Groups/{group['id']}", patch({"op": "replace", "path": "displayName", "value": "admins"})),
        409,
        "uniqueness",
    )
    assert not ScimGroup.objects.filter(group__name="admins").exists()


def test_groups_are_scoped_per_idp(scim, scim_b):
    hand_made = Group.objects.create(name="hand-made")
    group_b = scim_b.create_group("b-team")
    assert scim.get("/Groups").json()["totalResults"] == 0
    assert_error(scim.get(f"/Groups/{group_b['id']}"), 404)
    assert_error(scim.get(f"/Groups/{hand_made.pk}"), 404)
    assert_error(scim.delete(f"/Groups/{group_b['id']}"), 404)
    assert Group.objects.filter(name="b-team").exists()


def test_members_must_be_in_scope(scim, scim_b):
    bob = scim_b.create_user("bob", "subject-bob-0002")
    group = scim.create_group("engineering")
    body = {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}
    assert_error(scim.patch(f"/Groups/{group['id']}", patch(body)), 400, "invalidValue")
    assert_error(
        scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"value": "zz"}]}), 400
    )
    assert not Group.objects.get(name="engineering").user_set.exists()


def test_members_added_by_hand_are_kept(scim):
    alice = scim.create_user()
    group = scim.create_group("engineering", members=(alice["id"],))
    local = User.objects.create_user(**{User.USERNAME_FIELD: user_name("local")})
    Group.objects.get(name="engineering").user_set.add(local)
    response = scim.put(
        f"/Groups/{group['id']}", {"schemas": [GROUP_SCHEMA], "displayName": "engineering", "members": []}
    )
    assert response.status_code == 200, response.content
    assert list(Group.objects.get(name="engineering").user_set.all()) == [local]


@pytest.mark.skipif(not EMAIL_KEYED, reason="needs an email-keyed user model")
def test_email_keyed_user_name_must_be_an_email(scim):
    assert_error(scim.post("/Users", user_payload(userName="not-an-email")), 400, "invalidValue")
    scim.create_user(userName="Alice@Example.ORG")
    assert User.objects.get().email == "Alice@example.org"


# --------------------------------------------------------------------------
# ETags: meta.version, the ETag header, If-Match and If-None-Match


def test_service_provider_config_announces_etags(scim):
    assert scim.get("/ServiceProviderConfig").json()["etag"]["supported"] is True


def test_user_etag_and_stale_if_match(scim):
    created = scim.create_user()
    response = scim.get(f"/Users/{created['id']}")
    etag = response["ETag"]
    assert etag == response.json()["meta"]["version"] == created["meta"]["version"]
    assert scim.get(f"/Users/{created['id']}", HTTP_IF_NONE_MATCH=etag).status_code == 304

    renamed = scim.patch(
        f"/Users/{created['id']}",
        patch({"op": "replace", "path": "name.givenName", "value": "Alicia"}),
        HTTP_IF_MATCH=etag,
    )
    assert renamed.status_code == 200, renamed.content
    assert renamed["ETag"] != etag
    # A second writer still holding the old version is refused, and changes nothing.
    stale = patch({"op": "replace", "path": "name.givenName", "value": "Alice"})
    assert_error(scim.patch(f"/Users/{created['id']}", stale, HTTP_IF_MATCH=etag), 412)
    assert_error(scim.put(f"/Users/{created['id']}", user_payload(), HTTP_IF_MATCH=etag), 412)
    assert_error(scim.delete(f"/Users/{created['id']}", HTTP_IF_MATCH=etag), 412)
    user = User.objects.get()
    assert (user.first_name, user.is_active) == ("Alicia", True)
    assert scim.put(f"/Users/{created['id']}", user_payload(), HTTP_IF_MATCH=renamed["ETag"]).status_code == 200


def test_group_etag_follows_every_scim_change(scim):
    alice = scim.create_user()
    group = scim.create_group("engineering")
    first = scim.get(f"/Groups/{group['id']}", {"excludedAttributes": "members"})["ETag"]
    add = patch({"op": "add", "path": "members", "value": [{"value": alice["id"]}]})
    response = scim.patch(f"/Groups/{group['id']}", add, HTTP_IF_MATCH=first)
    assert response.status_code == 204, response.content
    second = response["ETag"]
    assert second != first
    assert scim.get(f"/Groups/{group['id']}")["ETag"] == second  # with or without members

    remove = patch({"op": "remove", "path": f'members[value eq "{alice["id"]}"]'})
    assert_error(scim.patch(f"/Groups/{group['id']}", remove, HTTP_IF_MATCH=first), 412)
    assert Group.objects.get(name="engineering").user_set.count() == 1
    # A PATCH that changes nothing keeps the version.
    scim.patch(f"/Groups/{group['id']}", add)
    assert scim.get(f"/Groups/{group['id']}")["ETag"] == second


# --------------------------------------------------------------------------
# Group PATCH: the cost follows the members changed, not the group's size


def big_group(scim, size: int) -> tuple[dict, list]:
    users = User.objects.bulk_create(User(**{User.USERNAME_FIELD: user_name(f"m{i}")}) for i in range(size))
    if users and users[0].pk is None:
        users = list(User.objects.filter(**{f"{User.USERNAME_FIELD}__startswith": "m"}))
    FederatedIdentity.objects.bulk_create(
        FederatedIdentity(user=user, idp_entity_id=IDP_A.entity_id, subject=f"s-{user.pk}") for user in users
    )
    group = scim.create_group("big")
    Group.objects.get(name="big").user_set.add(*users[1:])
    return group, users


def queries_of(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


@pytest.mark.parametrize(
    "operation",
    [
        lambda pk: {"op": "add", "path": "members", "value": [{"value": str(pk)}]},
        lambda pk: {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": str(pk)}]},
        lambda pk: {"op": "remove", "path": f'members[value eq "{pk}"]'},
    ],
    ids=["add", "remove-by-value", "remove-by-filter"],
)
def test_group_patch_cost_does_not_grow_with_the_group(scim, operation):
    counts = []
    for size in (20, 200):
        Group.objects.filter(name="big").delete()
        User.objects.all().delete()
        group, users = big_group(scim, size)
        member = users[0] if "add" in str(operation(0)) else users[1]
        body = patch(operation(member.pk))
        path = f"/Groups/{group['id']}"
        counts.append(queries_of(lambda path=path, body=body: scim.patch(path, body)))
        assert Group.objects.get(name="big").user_set.filter(pk=member.pk).exists() == ("add" in str(body))
    assert counts[0] == counts[1], counts


# --------------------------------------------------------------------------
# Per-IdP subject attribute, and the userName fallback


def test_subject_attribute_is_per_idp(scim, scim_b, settings):
    settings.SAML_JIT = {"IDPS": {scim_b.record.idp_entity_id: {"SCIM_SUBJECT_ATTRIBUTE": "userName"}}}
    assert_error(scim.post("/Users", user_payload(external_id=None)), 400, "invalidValue")
    created = scim_b.create_user("bob", external_id="entra-object-id")
    identity = FederatedIdentity.objects.get(user_id=created["id"])
    assert identity.subject == user_name("bob")
    assert created["externalId"] == "entra-object-id"  # kept, not the binding
    found = scim_b.get("/Users", {"filter": 'externalId eq "entra-object-id"'}).json()
    assert found["totalResults"] == 1


def test_user_name_fallback_binds_by_user_name_until_an_external_id_comes(scim, settings):
    settings.SAML_JIT = {"SCIM_USERNAME_FALLBACK": True}
    created = scim.create_user(external_id=None)
    assert "externalId" not in created
    assert FederatedIdentity.objects.get().subject == user_name()
    assert scim.get("/Users", {"filter": f'externalId eq "{user_name()}"'}).json()["totalResults"] == 0

    response = scim.patch(
        f"/Users/{created['id']}", patch({"op": "add", "path": "externalId", "value": "okta-00u1ab2cd"})
    )
    assert response.json()["externalId"] == "okta-00u1ab2cd"
    assert FederatedIdentity.objects.get().subject == "okta-00u1ab2cd"
    assert scim_events(EventKind.UPDATED)[-1].diff["subject"] == [user_name(), "okta-00u1ab2cd"]


# --------------------------------------------------------------------------
# displayName and the enterprise extension


ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_display_name_and_enterprise_attributes_round_trip(scim):
    body = user_payload(
        displayName="Alice P. Liddell",
        schemas=[USER_SCHEMA, ENTERPRISE_URN],
        **{
            ENTERPRISE_URN: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "department": "Tour Operations",
                "organization": "Universal Studios",
                "division": "Theme Park",
                "manager": "42",
            }
        },
    )
    created = scim.post("/Users", body).json()
    assert created["displayName"] == "Alice P. Liddell"
    assert created[ENTERPRISE_URN] == {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "department": "Tour Operations",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "manager": {"value": "42", "$ref": created[ENTERPRISE_URN]["manager"]["$ref"]},
    }
    assert created[ENTERPRISE_URN]["manager"]["$ref"].endswith("/scim/v2/Users/42")
    for filter_ in (
        'department eq "tour operations"',
        f'{ENTERPRISE_URN}:employeeNumber eq "701984"',
        'manager.value eq "42"',
        'displayName co "P."',
    ):
        assert scim.get("/Users", {"filter": filter_}).json()["totalResults"] == 1, filter_
    assert scim.get("/Users", {"filter": 'department eq "Finance"'}).json()["totalResults"] == 0


def test_enterprise_values_are_validated(scim):
    body = user_payload(**{ENTERPRISE_URN: {"department": "Tour\x00Operations"}})
    assert_error(scim.post("/Users", body), 400, "invalidValue")
    assert not User.objects.exists()


def test_display_name_can_be_removed(scim):
    created = scim.create_user(displayName="Alice")
    response = scim.patch(f"/Users/{created['id']}", patch({"op": "remove", "path": "displayName"}))
    assert "displayName" not in response.json()
    assert scim.get(f"/Users/{created['id']}").json().get("displayName") is None


# --------------------------------------------------------------------------
# Group PATCH forms outside the fast path, and refusals (never a 500)


def test_group_member_patch_refusals_and_other_forms(scim):
    alice = scim.create_user()
    group = scim.create_group("engineering", members=(alice["id"],))
    path = f"/Groups/{group['id']}"
    nested = {"op": "add", "path": "members", "value": [{"value": group["id"], "type": "Group"}]}
    assert_error(scim.patch(path, patch(nested)), 400, "invalidValue")
    assert_error(scim.patch(path, patch({"op": "add", "path": "members", "value": ["7"]})), 400, "invalidValue")
    assert_error(scim.patch(path, patch({"op": "remove", "path": 'members[display eq "Alice"]'})), 400)
    # A removal naming nobody in the group, or no user at all, changes nothing.
    for value in ("424242", "not-a-pk"):
        response = scim.patch(path, patch({"op": "remove", "path": f'members[value eq "{value}"]'}))
        assert response.status_code == 204, response.content
    assert Group.objects.get(name="engineering").user_set.count() == 1
    # Whole-members forms: replace, and remove without a value.
    bob = scim.create_user("bob", "subject-bob-0002")
    assert (
        scim.patch(path, patch({"op": "replace", "path": "members", "value": [{"value": bob["id"]}]})).status_code
        == 204
    )
    assert list(Group.objects.get(name="engineering").user_set.values_list("pk", flat=True)) == [int(bob["id"])]
    response = scim.patch(f"{path}?attributes=members,displayName", patch({"op": "remove", "path": "members"}))
    assert response.status_code == 200, response.content
    assert "members" not in response.json() and response.json()["displayName"] == "engineering"
    assert not Group.objects.get(name="engineering").user_set.exists()


def test_group_path_less_patch_with_members_and_name(scim):
    alice = scim.create_user()
    group = scim.create_group("engineering")
    value = {"displayName": "platform", "members": [{"value": alice["id"]}]}
    response = scim.patch(f"/Groups/{group['id']}?attributes=members", patch({"op": "add", "value": value}))
    assert response.status_code == 200, response.content
    assert [m["value"] for m in response.json()["members"]] == [alice["id"]]
    assert response.json()["members"][0]["$ref"].endswith(f"/scim/v2/Users/{alice['id']}")
    assert Group.objects.get(pk=group["id"]).name == "platform"


def test_user_resource_references_are_urls(scim):
    alice = scim.create_user()
    group = scim.create_group("engineering", members=(alice["id"],))
    (membership,) = scim.get(f"/Users/{alice['id']}").json()["groups"]
    assert membership["$ref"] == f"http://testserver/scim/v2/Groups/{group['id']}"
