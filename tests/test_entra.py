# ruff: noqa: F811 - fixtures are imported from tests.scim_helpers
"""Microsoft Entra ID's documented SCIM requests, replayed against a live server, in both subject modes.

The requests are fixtures (``tests/fixtures/scim/entra/*.json``), each naming
the documented step it is: Microsoft Learn's "Tutorial: Develop and plan
provisioning for a SCIM endpoint in Microsoft Entra ID" (user and group
operations) and "Known issues and resolutions with SCIM 2.0 protocol
compliance" (the forms sent without and with the ``aadOptscim062020`` flag).
Each test checks the status, the body and what the database holds afterwards:
a member really gone, a field really changed.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent, ScimProfile
from saml_jit.scim import auth
from saml_jit.scim.resources import ENTERPRISE
from tests.federation import IDP_B
from tests.scim_helpers import EMAIL_KEYED, Replay, User, _clear_cache, scim_server  # noqa: F401 - fixtures

pytest.importorskip("scim2_server", reason="SCIM needs the scim extra (Python 3.11+)")
pytest.importorskip("httpx2")
pytestmark = pytest.mark.django_db(transaction=True)

OBJECT_ID = "6f1a3c2e-9b4d-4e8a-a1f7-2c5d8e9b0a11"


def person(local: str, object_id: str = OBJECT_ID) -> dict[str, str]:
    """A user as Entra's default mapping sends it: the UPN as userName, the object ID as externalId."""
    return {
        "user_name": f"{local}@contoso.example",
        "email": f"{local}@contoso.example",
        "external_id": object_id,
        "given": local.split("_")[0].capitalize(),
        "family": "Larsen",
    }


@pytest.fixture(params=["externalId", "userName"])
def mode(request, settings) -> str:
    # Per IdP: Entra is IdP B here, IdP A keeps the defaults.
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"SCIM_SUBJECT_ATTRIBUTE": request.param}}}
    return request.param


@pytest.fixture
def entra(scim_server, mode) -> Replay:
    _, token = auth.create_client("entra", IDP_B.entity_id)
    return Replay(scim_server, token, "entra")


def user(replay: Replay, key: str = "user_id"):
    return User.objects.get(pk=replay.variables[key])


def profile(replay: Replay, key: str = "user_id") -> ScimProfile:
    return ScimProfile.objects.get(identity__user_id=replay.variables[key], identity__idp_entity_id=IDP_B.entity_id)


def subject(replay: Replay, key: str = "user_id") -> str:
    return FederatedIdentity.objects.get(user_id=replay.variables[key], idp_entity_id=IDP_B.entity_id).subject


def create(replay: Replay, local: str, object_id: str, key: str) -> None:
    replay.step("create_user", **person(local, object_id))
    replay.variables[key] = replay.variables["user_id"]


# --------------------------------------------------------------------------
# User operations (the tutorial), and the forms with and without the flag


def test_user_operations_of_the_tutorial(entra, mode):
    entra.step("create_user", **person("ellen_r"))
    assert subject(entra) == (OBJECT_ID if mode == "externalId" else "ellen_r@contoso.example")
    assert profile(entra).external_id == OBJECT_ID  # kept in both modes
    assert (user(entra).first_name, user(entra).last_name) == ("Ellen", "Larsen")
    entra.step("get_user")
    entra.step("get_user_by_query")
    entra.step("get_user_by_query_zero_results")
    entra.step("get_user_by_external_id")

    entra.step("update_user_multivalued", new_email="ellen.larsen@contoso.example", new_family="Reckert")
    assert user(entra).last_name == "Reckert"
    if not EMAIL_KEYED:
        assert user(entra).email == "ellen.larsen@contoso.example"

    entra.step("update_user_single_valued", new_user_name="ellen.reckert@contoso.example")
    entra.variables["user_name"] = "ellen.reckert@contoso.example"
    assert user(entra).get_username() == "ellen.reckert@contoso.example"
    assert subject(entra) == (OBJECT_ID if mode == "externalId" else "ellen.reckert@contoso.example")
    entra.step("get_user_by_query")

    entra.step("disable_user")
    assert not user(entra).is_active
    entra.step("enable_user_string")
    assert user(entra).is_active
    entra.step("delete_user")
    assert not user(entra).is_active  # the row stays (SCIM_HARD_DELETE is off)


@pytest.mark.parametrize("step", ["disable_user", "disable_user_string", "disable_user_flag"])
def test_every_disable_form_deactivates(entra, step):
    entra.step("create_user", **person("ellen_r"))
    entra.step(step)
    assert not user(entra).is_active
    assert ProvisioningEvent.objects.filter(kind=EventKind.DEACTIVATED, user=user(entra)).count() == 1


def test_default_mapping_keeps_display_name_and_enterprise_attributes(entra):
    body = entra.step("create_user_default_mapping", employee_number="100009", **person("ellen_r"))
    kept = profile(entra)
    assert (kept.display_name, kept.employee_number, kept.department) == ("Ellen Larsen", "100009", "Research")
    assert not {"title", "phoneNumbers", "addresses", "preferredLanguage"} & set(body)  # not kept, not claimed
    assert entra.step("get_user")["displayName"] == "Ellen Larsen"


# --------------------------------------------------------------------------
# Silent failure 1: displayName made every PATCH touching it fail (and lose the rest)


def test_display_name_alone_is_kept_and_returned(entra):
    entra.step("create_user", **person("ellen_r"))
    body = entra.step("update_display_name", display_name="Ellen R. Larsen")
    assert body["displayName"] == "Ellen R. Larsen"
    assert profile(entra).display_name == "Ellen R. Larsen"
    event = ProvisioningEvent.objects.filter(kind=EventKind.UPDATED).latest("id")
    assert event.diff["displayName"] == [None, "Ellen R. Larsen"]
    # Entra compares on its next cycle: what it sent is what it reads.
    assert entra.step("get_user")["displayName"] == "Ellen R. Larsen"


@pytest.mark.parametrize("step", ["replace_multiple_attributes", "replace_multiple_attributes_flag"])
def test_a_patch_with_display_name_applies_every_operation(entra, mode, step):
    entra.step("create_user", **person("ellen_r"))
    changes = {
        "display_name": "Pvlo Gtfd",
        "new_email": "gtfd.pkqf@contoso.example",
        "new_given": "Gtfd",
        "new_family": "Pkqf",
        "new_external_id": "0b8e2d4f-1c3a-4b5e-9d7f-6a8c0e2b4d61",
        "employee_number": "Enhm",
    }
    entra.step(step, **changes)

    account, kept = user(entra), profile(entra)
    assert (account.first_name, account.last_name) == ("Gtfd", "Pkqf")
    if not EMAIL_KEYED:
        assert account.email == "gtfd.pkqf@contoso.example"
    assert (kept.display_name, kept.employee_number, kept.external_id) == (
        "Pvlo Gtfd",
        "Enhm",
        changes["new_external_id"],
    )
    assert subject(entra) == (changes["new_external_id"] if mode == "externalId" else "ellen_r@contoso.example")
    assert entra.step("get_user")[ENTERPRISE] == {"employeeNumber": "Enhm"}


# --------------------------------------------------------------------------
# Enterprise extension: manager as Entra sends it, and the documented filter (issue item 3)


def test_manager_is_stored_and_filterable(entra):
    create(entra, "manager_m", "a3c1e5f7-0000-4000-8000-000000000001", "manager_id")
    create(entra, "report_r", "a3c1e5f7-0000-4000-8000-000000000002", "report_id")
    entra.variables["user_id"] = entra.variables["report_id"]

    entra.step("add_manager")
    assert profile(entra).manager == entra.variables["manager_id"]
    entra.step("get_user_by_manager")
    assert entra.step("get_user_by_manager", manager_id="99999", status=200)["totalResults"] == 0

    entra.step("remove_manager", manager_id=entra.variables["manager_id"])
    assert profile(entra).manager == ""
    assert entra.step("get_user_by_manager", status=200)["totalResults"] == 0


# --------------------------------------------------------------------------
# Group operations; silent failure 2: the tutorial's member removal did nothing


def group_members(replay: Replay) -> set[int]:
    return set(Group.objects.get(pk=replay.variables["group_id"]).user_set.values_list("pk", flat=True))


def member_events(replay: Replay, key: str) -> list[dict]:
    events = ProvisioningEvent.objects.filter(kind=EventKind.GROUPS_CHANGED, user_id=replay.variables[key])
    return [event.diff["groups"] for event in events.order_by("id")]


def test_group_operations_of_the_tutorial(entra):
    create(entra, "ann_a", "b0000000-0000-4000-8000-00000000000a", "ann")
    create(entra, "bo_b", "b0000000-0000-4000-8000-00000000000b", "bo")
    entra.step("create_group", group_name="Sales EMEA", group_external_id="5e2a9c7d-0000-4000-8000-0000000000aa")
    assert "members" not in entra.step("get_group")
    entra.step("get_group_by_display_name")
    entra.step("update_group_name", new_group_name="Sales Europe")
    entra.variables["group_name"] = "Sales Europe"
    assert Group.objects.get(pk=entra.variables["group_id"]).name == "Sales Europe"
    entra.step("get_group_by_display_name")

    entra.step("add_member", member_id=entra.variables["ann"])
    assert group_members(entra) == {int(entra.variables["ann"])}
    entra.step("add_members_flag", member_id=entra.variables["ann"], other_member_id=entra.variables["bo"])
    assert group_members(entra) == {int(entra.variables["ann"]), int(entra.variables["bo"])}

    entra.step("remove_member", member_id=entra.variables["ann"])
    assert group_members(entra) == {int(entra.variables["bo"])}  # really gone
    assert member_events(entra, "ann")[-1] == {"added": [], "removed": ["Sales Europe"]}
    entra.step("remove_member_flag", member_id=entra.variables["bo"])
    assert group_members(entra) == set()

    entra.step("delete_group")
    assert not Group.objects.filter(pk=entra.variables["group_id"]).exists()


def test_a_removal_that_matches_nothing_claims_nothing(entra):
    create(entra, "ann_a", "b0000000-0000-4000-8000-00000000000a", "ann")
    entra.step("create_group", group_name="Sales EMEA", group_external_id="g-1")
    entra.step("add_member", member_id=entra.variables["ann"])
    entra.step("remove_member", member_id=entra.variables["ann"])
    version = entra.step("get_group")["meta"]["version"]
    events = ProvisioningEvent.objects.count()

    entra.step("remove_member", member_id=entra.variables["ann"])  # Entra repeats a removal
    entra.step("remove_member_flag", member_id=entra.variables["ann"])

    assert ProvisioningEvent.objects.count() == events  # no event for a change not made
    assert entra.step("get_group")["meta"]["version"] == version  # nor a new version
