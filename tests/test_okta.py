# ruff: noqa: F811 - fixtures are imported from tests.scim_helpers and tests.conftest
"""Okta's documented SCIM requests, replayed against a live server, in the configurations the README pairs with Okta.

The requests are fixtures (``tests/fixtures/scim/okta/*.json``): the steps of
the Okta SCIM 2.0 Spec Test (the Runscope suite Okta asks integrators to
pass), in its order, and the requests of Okta's "SCIM 2.0 protocol
reference" (create, find, PUT, deactivate and reactivate users; push,
rename, add and remove members of groups).

Okta creates users without ``externalId`` unless the app maps one, so the
Okta pairing binds users by ``userName``: ``SCIM_SUBJECT_ATTRIBUTE =
"userName"`` for Okta's IdP (or ``SCIM_USERNAME_FALLBACK``), and on the SAML
side a NameID of format *unspecified* carrying the Okta username — the last
tests check that the SCIM account is the one that SAML login lands on.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_UNSPECIFIED

from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.scim import auth
from tests.conftest import person
from tests.federation import IDP_A
from tests.scim_helpers import Replay, User, _clear_cache, assert_error, scim, scim_server  # noqa: F401 - fixtures

pytest.importorskip("scim2_server", reason="SCIM needs the scim extra (Python 3.11+)")
pytest.importorskip("httpx2")

OKTA = IDP_A.entity_id
#: The two configurations the README pairs with Okta (per IdP).
PAIRINGS = {
    "userName": {"SCIM_SUBJECT_ATTRIBUTE": "userName"},
    "externalId+fallback": {"SCIM_SUBJECT_ATTRIBUTE": "externalId", "SCIM_USERNAME_FALLBACK": True},
}
SPEC_USER = {
    "randomUsername": "Runscope4ql7Test@atko.example",
    "randomUsernameCaps": "RUNSCOPE4QL7TEST@ATKO.EXAMPLE",
    "randomEmail": "Runscope4ql7Test@atko.example",
    "randomGivenName": "Kamila",
    "randomFamilyName": "Oyelaran",
    "InvalidUserEmail": "abcdefgh@atko.example",
    "UserIdThatDoesNotExist": "010101001010101010101",
}
SPEC_STEPS = [
    "spec_01_list_users",
    "spec_02_get_user",
    "spec_03_invalid_user_by_username",
    "spec_04_invalid_user_by_id",
    "spec_05_random_user_absent",
    "spec_06_create_user",
    "spec_07_verify_created",
    "spec_08_recreate_conflict",
    "spec_09_username_case",
    "spec_10_groups",
    "spec_11_status_401",
    "spec_12_status_404",
]


def reference_user(local: str) -> dict[str, str]:
    return {
        "user_name": f"{local}@okta.example",
        "given": local.capitalize(),
        "family": "User",
        "password": "1mz050nq",
    }


@pytest.fixture(params=list(PAIRINGS))
def pairing(request, settings) -> str:
    settings.SAML_JIT = {"IDPS": {OKTA: PAIRINGS[request.param]}}
    return request.param


@pytest.fixture
def okta(scim_server, pairing) -> Replay:
    _, token = auth.create_client("okta", OKTA)
    return Replay(scim_server, token, "okta")


def subject_of(user_id) -> str:
    return FederatedIdentity.objects.get(user_id=user_id, idp_entity_id=OKTA).subject


# --------------------------------------------------------------------------
# The Okta SCIM 2.0 Spec Test, step by step


@pytest.mark.django_db(transaction=True)
def test_spec_test_passes(okta):
    okta.step("create_user", **reference_user("seed"))  # the suite expects at least one user
    for step in SPEC_STEPS:
        okta.step(step, **SPEC_USER)
    assert okta.sent[1:] == SPEC_STEPS

    created = User.objects.get(pk=okta.variables["idUserOne"])
    assert (created.first_name, created.last_name) == ("Kamila", "Oyelaran")
    assert created.get_username() == "Runscope4ql7Test@atko.example"
    assert subject_of(created.pk) == "Runscope4ql7Test@atko.example"  # bound by userName
    assert User.objects.filter(pk=created.pk).count() == 1  # the recreation created nothing


@pytest.mark.django_db(transaction=True)
def test_spec_test_create_is_refused_in_the_default_mode(scim_server, settings):
    """Without the Okta pairing, a user without externalId could never be joined to a SAML login: 400, saying why."""
    settings.SAML_JIT = {}
    _, token = auth.create_client("okta", OKTA)
    replay = Replay(scim_server, token, "okta")
    body = replay.step("spec_06_create_user", status=400, **SPEC_USER)
    assert body["scimType"] == "invalidValue"
    assert "SCIM_USERNAME_FALLBACK" in body["detail"]
    assert not User.objects.exists()


# --------------------------------------------------------------------------
# The SCIM 2.0 protocol reference: users


@pytest.mark.django_db(transaction=True)
def test_user_requests_of_the_reference(okta):
    okta.step("find_user", **reference_user("test.user"))
    okta.step("create_user")
    user_id = okta.variables["user_id"]
    assert subject_of(user_id) == "test.user@okta.example"
    assert not User.objects.get(pk=user_id).has_usable_password()  # the password Okta sends is ignored
    okta.step("get_user")
    assert okta.step("list_users")["totalResults"] == 1

    okta.step("replace_user", new_given="Another")
    assert User.objects.get(pk=user_id).first_name == "Another"
    assert subject_of(user_id) == "test.user@okta.example"  # a PUT without externalId keeps the binding

    okta.step("deactivate_user")
    assert not User.objects.get(pk=user_id).is_active
    okta.step("reactivate_user")
    assert User.objects.get(pk=user_id).is_active
    kinds = list(ProvisioningEvent.objects.filter(user_id=user_id).order_by("id").values_list("kind", flat=True))
    assert kinds == [EventKind.CREATED, EventKind.UPDATED, EventKind.DEACTIVATED, EventKind.REACTIVATED]


# --------------------------------------------------------------------------
# The SCIM 2.0 protocol reference: group push


@pytest.mark.django_db(transaction=True)
def test_group_requests_of_the_reference(okta):
    okta.step("create_user", **reference_user("member"))
    member = okta.variables["user_id"]
    okta.step("create_group", group_name="Test SCIMv2")
    group_id = okta.variables["group_id"]
    okta.step("find_group")
    okta.step("get_group")
    okta.step("rename_group", new_group_name="Test SCIMv2 renamed")
    assert Group.objects.get(pk=group_id).name == "Test SCIMv2 renamed"

    okta.step("add_members", member_id=member, member_user_name="member@okta.example")
    assert list(Group.objects.get(pk=group_id).user_set.values_list("pk", flat=True)) == [int(member)]
    okta.step("remove_member")
    assert not Group.objects.get(pk=group_id).user_set.exists()
    okta.step("replace_group")
    assert list(Group.objects.get(pk=group_id).user_set.values_list("pk", flat=True)) == [int(member)]
    okta.step("delete_group")
    assert not Group.objects.filter(pk=group_id).exists()


# --------------------------------------------------------------------------
# The SAML side of the pairing: NameID "unspecified" carrying the Okta username


@pytest.mark.django_db
@pytest.mark.parametrize("config", list(PAIRINGS))
def test_okta_login_lands_on_the_scim_account(scim, browser, settings, config):
    settings.SAML_JIT = {"IDPS": {OKTA: PAIRINGS[config]}}
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "kamila@okta.example",
        "name": {"givenName": "Kamila", "familyName": "Oyelaran"},
        "emails": [{"primary": True, "value": "kamila@okta.example", "type": "work"}],
        "active": True,
    }
    response = scim.post("/Users", body)
    assert response.status_code == 201, response.content

    login = browser.login(
        idp=IDP_A,
        name_id="kamila@okta.example",
        name_id_format=NAMEID_FORMAT_UNSPECIFIED,
        attributes=person(email="kamila@okta.example"),
    )
    assert login.status_code == 302, login.content[:2000]
    assert User.objects.count() == 1
    assert int(browser.client.session["_auth_user_id"]) == int(response.json()["id"])


@pytest.mark.django_db
def test_okta_email_address_name_id_is_refused(scim, browser, settings):
    """The pairing needs format *unspecified*: an emailAddress NameID is never a subject (by design)."""
    settings.SAML_JIT = {"IDPS": {OKTA: PAIRINGS["userName"]}}
    login = browser.login(
        idp=IDP_A,
        name_id="kamila@okta.example",
        name_id_format=NAMEID_FORMAT_EMAILADDRESS,
        attributes=person(email="kamila@okta.example"),
    )
    assert login.status_code == 403, login.content[:2000]
    assert not FederatedIdentity.objects.exists()
    assert ProvisioningEvent.objects.get(kind=EventKind.DENIED).reason_code == "email_name_id"
