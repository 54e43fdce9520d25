"""The dry run in the admin: attributes or a real signed response in, the plan or the refusal out, nothing written."""

from __future__ import annotations

import json
import logging

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from saml_jit import dry_run
from saml_jit.messages import ERROR_MESSAGES
from saml_jit.models import ProvisioningEvent
from tests.conftest import person
from tests.federation import ACS_URL, IDP_A, ROGUE_CERT, ROGUE_KEY, SP_ENTITY_ID

pytestmark = pytest.mark.django_db

User = get_user_model()
PAGE = "admin:saml_jit_provisioningevent_dry_run"
SUBJECT = "subject-alice-0001"
GROUPS = {"GROUP_MAP": {"eng": ["Engineering"]}, "STAFF_GROUPS": ["admins"], "PRIVILEGED_GROUPS": ["Engineering"]}


def row_counts() -> dict[str, int]:
    """Rows of every table a login could write: users, groups, memberships and every saml_jit model."""
    models = [User, Group, User.groups.through, *apps.get_app_config("saml_jit").get_models()]
    return {model._meta.label: model._default_manager.count() for model in models if not model._meta.proxy}


def staff(username="auditor", *, perms=("view_provisioningevent", "view_federatedidentity")):
    user = User.objects.create_user(
        **{User.USERNAME_FIELD: f"{username}@example.org" if User.USERNAME_FIELD == "email" else username},
        password="pw",
        is_staff=True,
    )
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="saml_jit", codename__in=perms))
    return user


def attributes_run(client, *, idp=IDP_A.entity_id, subject=SUBJECT, attributes=None, **extra):
    text = attributes if isinstance(attributes, str) else json.dumps(attributes or {"mail": "alice@example.org"})
    return client.post(reverse(PAGE), {"idp": idp, "subject": subject, "attributes": text, **extra})


def signed_response(**options) -> str:
    options.setdefault("in_response_to", "_a-request-of-another-browser")
    options.setdefault("attributes", person())
    data = IDP_A.post_data(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, name_id=SUBJECT, **options)
    return data["SAMLResponse"]


def outcome(response) -> dry_run.DryRun:
    assert response.status_code == 200, response.content[:2000]
    return response.context["result"]


# ----------------------------------------------------------------------------- who may


def test_the_page_needs_staff_who_can_view_events_and_identities(client):
    url = reverse(PAGE)
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(staff("clerk", perms=("view_provisioningevent",)))
    assert client.get(url).status_code == 403
    assert attributes_run(client).status_code == 403
    client.force_login(staff())
    assert client.get(url).status_code == 200


def test_it_is_linked_from_the_app_index_and_the_event_list_for_those_who_may(client):
    client.force_login(staff())
    url = reverse(PAGE)
    assert url in client.get(reverse("admin:app_list", args=["saml_jit"])).content.decode()
    assert url in client.get(reverse("admin:saml_jit_provisioningevent_changelist")).content.decode()
    client.force_login(staff("clerk", perms=("view_provisioningevent",)))
    assert url not in client.get(reverse("admin:saml_jit_provisioningevent_changelist")).content.decode()


# ----------------------------------------------------------------------------- from attributes


def test_a_first_login_would_create_the_account_and_nothing_is_written(admin_client, settings, caplog):
    settings.SAML_JIT = dict(GROUPS)
    Group.objects.create(name="Engineering")
    before = row_counts()
    caplog.set_level(logging.INFO, logger="saml_jit")
    response = attributes_run(
        admin_client, attributes={"mail": "alice@example.org", "givenName": "Alice", "groups": ["eng", "admins"]}
    )
    result = outcome(response)
    assert result.plan["action"] == "create" and result.plan["user"] is None
    assert result.plan["diff"]["email"] == [None, "alice@example.org"]
    assert set(result.plan["grants"]) == {"Engineering", "is_staff"}
    assert result.plan["grants"]["Engineering"]  # privileged: it expires
    content = response.content.decode()
    assert "The sign-in would be accepted: create" in content and "a new account" in content
    assert "<code>Engineering</code>" in content and "<code>is_staff</code>" in content and "expires" in content
    assert row_counts() == before
    [line] = [r.getMessage() for r in caplog.records if r.name == "saml_jit.dry_run"]
    assert line == f"saml_jit dry run idp={IDP_A.entity_id} outcome=create"  # identifiers only
    assert "alice" not in caplog.text.split("saml_jit dry run")[-1]


def test_an_existing_account_shows_its_username_the_diff_and_what_it_loses(admin_client, browser, settings):
    settings.SAML_JIT = dict(GROUPS)
    Group.objects.create(name="Engineering")
    assert browser.login(attributes=person(groups=["eng"])).status_code == 302
    user = User.objects.get(saml_identities__isnull=False)
    before = row_counts()
    lines = "mail: alice@example.org\ngivenName: Alicia\nsn: Liddell\n# no groups any more\n"
    result = outcome(attributes_run(admin_client, attributes=lines))
    assert (result.plan["action"], result.plan["user"]) == ("update", user.get_username())
    assert result.plan["diff"]["first_name"] == ["Alice", "Alicia"]
    assert result.plan["revoked_grants"] == ["Engineering"]
    assert row_counts() == before
    assert set(user.groups.values_list("name", flat=True)) == {"Engineering"}


def test_a_denial_shows_its_reason_code_detail_and_what_the_person_reads(admin_client, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    before = row_counts()
    response = attributes_run(admin_client)
    result = outcome(response)
    assert result.plan == {"action": "deny", "reason_code": "creation_disabled", "message": result.plan["message"]}
    content = response.content.decode()
    assert "The sign-in would be denied: creation_disabled" in content
    assert result.plan["message"] in content and str(ERROR_MESSAGES["creation_disabled"]) in content
    assert row_counts() == before


def test_a_transient_name_id_is_denied_as_a_login_would_be(admin_client):
    assert outcome(attributes_run(admin_client, transient="on")).plan["reason_code"] == "transient_name_id"


def test_an_idp_outside_the_metadata_is_said(admin_client):
    result = outcome(attributes_run(admin_client, idp="https://elsewhere.example/idp"))
    assert any("not in the SP's metadata" in note for note in result.notes)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"attributes": "{}"}, "idp", "Name the identity provider"),
        ({"idp": IDP_A.entity_id, "attributes": '{"mail": '}, "attributes", "not valid JSON"),
        ({"idp": IDP_A.entity_id, "attributes": '["mail"]'}, "attributes", "must be a JSON object"),
        ({"idp": IDP_A.entity_id, "attributes": "mail alice@example.org"}, "attributes", "Line 1"),
    ],
)
def test_bad_input_is_a_form_error_and_runs_nothing(admin_client, data, field, message):
    response = admin_client.post(reverse(PAGE), data)
    assert response.status_code == 200 and "result" not in response.context
    assert message in " ".join(response.context["form"].errors[field])


def test_attribute_lines_repeat_a_name_for_several_values():
    parsed = dry_run.parse_attributes("groups: eng\ngroups: ops\nmail: a@example.org\n\n# comment")
    assert parsed == {"groups": ("eng", "ops"), "mail": ("a@example.org",)}
    assert dry_run.parse_attributes('{"groups": ["eng", "ops"], "n": 1}') == {"groups": ("eng", "ops"), "n": ("1",)}


# ----------------------------------------------------------------------------- from a SAML response


def test_a_signed_response_is_checked_as_the_acs_checks_it_and_planned(admin_client):
    before = row_counts()
    pasted = signed_response()
    wrapped = "\n".join(pasted[i : i + 76] for i in range(0, len(pasted), 76))  # as a tracer shows it
    response = admin_client.post(reverse(PAGE), {"saml_response": wrapped})
    result = outcome(response)
    assert result.rejection is None and result.plan["action"] == "create"
    assert result.plan["subject"] == SUBJECT and result.idp_entity_id == IDP_A.entity_id
    assert any("_a-request-of-another-browser" in note for note in result.notes)  # what it could not check
    assert row_counts() == before
    assert not ProvisioningEvent.objects.exists()


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"now": -3600}, "expired"),
        ({"signing_key_file": ROGUE_KEY, "signing_cert_file": ROGUE_CERT}, "bad_signature"),
        ({"audience": "https://another-sp.example/"}, "wrong_audience"),
        ({"tamper": lambda xml: xml.replace("Alice", "Mallory")}, "bad_signature"),
    ],
)
def test_what_stops_a_response_is_said_exactly(admin_client, options, code):
    before = row_counts()
    response = admin_client.post(reverse(PAGE), {"saml_response": signed_response(**options)})
    result = outcome(response)
    assert result.plan is None and result.rejection.code == code
    content = response.content.decode()
    assert f"The response would be rejected: {code}" in content and result.rejection.message in content
    assert row_counts() == before


def test_garbage_is_a_malformed_response_not_a_500(admin_client):
    result = outcome(admin_client.post(reverse(PAGE), {"saml_response": "this is not base64 <xml>"}))
    assert result.rejection.code == "malformed_response"


def test_a_response_a_login_already_used_is_a_replay(admin_client, browser):
    data = browser.answered_login(SUBJECT)
    assert browser.client.post(reverse("saml2_acs"), data).status_code == 302
    before = row_counts()
    result = outcome(admin_client.post(reverse(PAGE), {"saml_response": data["SAMLResponse"]}))
    assert result.rejection.code == "replay"
    assert row_counts() == before


def test_a_dry_run_does_not_use_the_assertion_up(admin_client, browser):
    data = browser.answered_login(SUBJECT)
    assert outcome(admin_client.post(reverse(PAGE), {"saml_response": data["SAMLResponse"]})).plan["action"] == "create"
    assert browser.client.post(reverse("saml2_acs"), data).status_code == 302  # the real login still works
    assert User.objects.count() == 2  # the admin and Alice


def test_with_the_cache_replay_store_too_a_used_assertion_is_a_replay_and_a_fresh_one_stays_unused(
    admin_client, browser, settings
):
    settings.SAML_JIT = {"REPLAY_STORE": "cache"}
    fresh = browser.answered_login("subject-bob-0002")
    assert outcome(admin_client.post(reverse(PAGE), {"saml_response": fresh["SAMLResponse"]})).rejection is None
    assert browser.client.post(reverse("saml2_acs"), fresh).status_code == 302  # not used up by the dry run
    result = outcome(admin_client.post(reverse(PAGE), {"saml_response": fresh["SAMLResponse"]}))
    assert result.rejection is not None and result.rejection.code == "replay"
