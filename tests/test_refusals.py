"""One refusal path: the event, and the page a refused person reads (end to end through the ACS)."""

from __future__ import annotations

import pickle

import pytest
from django.contrib.auth import get_user_model
from django.utils.html import escape

from saml_jit import refusals
from saml_jit.exceptions import Denied, Refusal, Rejected, Replayed
from saml_jit.messages import ERROR_MESSAGES
from saml_jit.models import EventKind, EventSource, ProvisioningEvent
from saml_jit.policy import Policy

User = get_user_model()
ADMIN_DETAIL = "Creating accounts on first login is turned off for this IdP."


class SitePolicy(Policy):
    error_messages = {**Policy.error_messages, "creation_disabled": "Ask the helpdesk for an account."}


# ----------------------------------------------------------------------------- exceptions


def test_refusals_are_one_immutable_family():
    denial = Denied("email_in_use", "detail", "email")
    assert isinstance(denial, Refusal) and isinstance(Replayed(), Rejected)
    assert (denial.status, Rejected("x").status, Replayed().code) == (403, 400, "replay")
    with pytest.raises(AttributeError, match="immutable"):
        denial.code = "other"  # type: ignore[misc]
    changed = denial.replace(subject="s-1")
    assert (changed.subject, denial.subject, changed.code, changed.field) == ("s-1", "", "email_in_use", "email")
    with pytest.raises(TypeError):
        denial.replace(colour="red")


def test_a_refusal_survives_pickling():
    denial = pickle.loads(pickle.dumps(Denied("too_long", "detail", "email", subject="s-1")))
    assert (denial.code, denial.message, denial.field, denial.subject) == ("too_long", "detail", "email", "s-1")


@pytest.mark.django_db
def test_record_writes_one_event_per_refusal_kind():
    denied = refusals.record(Denied("inactive", "detail", subject="s-1"), idp_entity_id="https://idp")
    rejected = refusals.record(Rejected("bad_signature", "IncorrectlySigned"))
    token = refusals.record(Rejected("invalid_token", "no match", 401), kind=EventKind.TOKEN_REFUSED, source="scim")
    assert [(e.kind, e.reason_code, e.message) for e in (denied, rejected, token)] == [
        (EventKind.DENIED, "inactive", "detail"),
        (EventKind.REJECTED, "bad_signature", "IncorrectlySigned"),
        (EventKind.TOKEN_REFUSED, "invalid_token", "no match"),
    ]
    assert (denied.subject, token.source) == ("s-1", EventSource.SCIM)
    assert ProvisioningEvent.objects.count() == 3


# ----------------------------------------------------------------------------- the page


@pytest.mark.django_db
def test_person_reads_the_friendly_message_not_the_detail(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    response = browser.login()
    page = response.content.decode()
    assert response.status_code == 403
    assert escape(str(ERROR_MESSAGES["creation_disabled"])) in page
    assert ADMIN_DETAIL not in page
    event = ProvisioningEvent.objects.get()
    assert event.message == ADMIN_DETAIL  # the administrator's detail stays on the event
    assert "<code>creation_disabled</code>" in page and f"#{event.pk}" in page
    assert 'href="/saml2/login/?idp=' in page and 'href="/"' in page  # what to do next


@pytest.mark.django_db
def test_staff_also_see_the_detail(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    staff = User.objects.create_user(
        **{User.USERNAME_FIELD: "ops@example.org" if User.USERNAME_FIELD == "email" else "ops"}, is_staff=True
    )
    browser.client.force_login(staff)
    response = browser.post_response(name_id="subject-alice-0001", attributes={}, in_response_to=None)
    assert response.status_code in (400, 403)
    assert "Detail (shown to staff only)" in response.content.decode()


@pytest.mark.django_db
def test_sites_reword_the_message_on_their_policy(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False, "POLICY": f"{__name__}.SitePolicy"}
    response = browser.login()
    assert "Ask the helpdesk for an account." in response.content.decode()


@pytest.mark.django_db
def test_rejections_get_their_friendly_message_too(browser):
    response = browser.post_response(name_id="subject-alice-0001", attributes={}, in_response_to="_not-ours")
    assert response.status_code == 400
    assert escape(str(ERROR_MESSAGES["unsolicited"])) in response.content.decode()
    assert ProvisioningEvent.objects.get().reason_code == "unsolicited"
