"""Authentication context and MFA for privileges, end to end through the real login, step-up and ACS views.

``REQUIRED_AUTHN_CONTEXT`` is sent only when configured and enforced on the
response (and the IdP's ``NoAuthnContext`` status is that same refusal);
with ``PRIVILEGES_REQUIRE_MFA`` privileges come only from an MFA sign-in,
and the step-up link brings them back. Both crypto backends; the pure rules
(settings parsing, matching, planning) below without a database.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from saml2.s_utils import status_message_factory
from saml2.samlp import STATUS_NO_AUTHN_CONTEXT

from saml_jit import sessions
from saml_jit.checks import Codes, check_settings
from saml_jit.conf import MICROSOFT_MFA, REFEDS_MFA, RequiredAuthnContext, app_settings, required_authn_context
from saml_jit.context_processors import step_up
from saml_jit.exceptions import AuthnContextRefused
from saml_jit.groups import MFA_NOTE, STAFF, GroupState, plan_groups
from saml_jit.mapping import Profile
from saml_jit.models import EventKind, Grant, GrantKind, ProvisioningEvent
from saml_jit.saml import authn as rules
from saml_jit.saml.data import Authn
from tests.conftest import Browser, person
from tests.federation import IDP_A
from tests.test_sessions import answer, sent_request

User = get_user_model()
SUBJECT = "subject-alice-0001"
PPT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
ADMINS = "cn=admins,ou=groups,dc=example,dc=org"
#: IdP A asserts ADMINS -> staff and the privileged Django group "operators".
PRIVILEGES = {
    "GROUP_MAP": {ADMINS: ["operators"]},
    "CREATE_GROUPS": True,
    "PRIVILEGED_GROUPS": ["operators"],
    "STAFF_GROUPS": [ADMINS],
}


def idp_settings(settings, **values) -> None:
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: values}}


def start(browser: Browser, path: str = "/saml2/login/"):
    return sent_request(browser.client.get(path, {"idp": IDP_A.entity_id}))


def admin_login(browser: Browser, request_id: str | None = None, **spec):
    """IdP A's answer for Alice in the admins group (to a new login when ``request_id`` is None)."""
    request_id = request_id or start(browser).id
    attributes = person(isMemberOf=[ADMINS])
    return browser.post_response(IDP_A, name_id=SUBJECT, attributes=attributes, in_response_to=request_id, **spec)


def privileges() -> tuple[bool, list[str]]:
    user = User.objects.get()
    return user.is_staff, sorted(user.groups.values_list("name", flat=True))


def last_login_event() -> ProvisioningEvent:
    return ProvisioningEvent.objects.exclude(kind__in=[EventKind.REJECTED, EventKind.DENIED]).latest("pk")


# --------------------------------------------------------------------------
# RequestedAuthnContext: never by default, enforced when configured


@pytest.mark.django_db
def test_no_requested_authn_context_by_default(crypto_backend, browser):
    request = start(browser)
    assert request.requested_authn_context is None  # saml2int SDP-SP07; Entra AADSTS75011
    assert request.force_authn in (None, "false")


@pytest.mark.django_db
def test_required_context_is_requested_and_a_weaker_answer_refused(crypto_backend, browser, settings):
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=REFEDS_MFA)
    request = start(browser)
    context = request.requested_authn_context
    assert [ref.text for ref in context.authn_context_class_ref] == [REFEDS_MFA]
    assert context.comparison == "exact"
    response = answer(browser, request.id, authn_context=PPT)
    assert response.status_code == 403, response.content[:2000]
    assert b"<code>authn_context_insufficient</code>" in response.content
    assert b"multi-factor authentication (REFEDS MFA)" in response.content  # names what is missing
    assert REFEDS_MFA.encode() in response.content
    assert not User.objects.exists()
    [event] = ProvisioningEvent.objects.all()
    assert (event.kind, event.reason_code, event.idp_entity_id) == (
        EventKind.REJECTED,
        "authn_context_insufficient",
        IDP_A.entity_id,
    )
    assert PPT in event.message


@pytest.mark.django_db
def test_required_context_on_the_redirect_binding(crypto_backend, browser, settings):
    settings.SAML_DEFAULT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=REFEDS_MFA)
    response = browser.client.get("/saml2/login/", {"idp": IDP_A.entity_id})
    assert response.status_code == 302
    request = sent_request(response)
    assert [ref.text for ref in request.requested_authn_context.authn_context_class_ref] == [REFEDS_MFA]
    assert b"<code>authn_context_insufficient</code>" in answer(browser, request.id, authn_context=PPT).content


@pytest.mark.django_db
def test_required_context_met_signs_in(crypto_backend, browser, settings):
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=[REFEDS_MFA, MICROSOFT_MFA])
    response = answer(browser, start(browser).id, authn_context=MICROSOFT_MFA)
    assert response.status_code == 302, response.content[:2000]


@pytest.mark.django_db
def test_a_missing_class_ref_is_insufficient(crypto_backend, browser, settings):
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=REFEDS_MFA)
    response = answer(browser, start(browser).id, authn_context=None)
    assert b"<code>authn_context_insufficient</code>" in response.content


@pytest.mark.django_db
def test_comparison_better_is_sent_and_the_weakest_class_refused(crypto_backend, browser, settings):
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT={"classes": [PPT, REFEDS_MFA], "comparison": "better"})
    request = start(browser)
    assert request.requested_authn_context.comparison == "better"
    assert b"<code>authn_context_insufficient</code>" in answer(browser, request.id, authn_context=PPT).content
    assert answer(browser, start(browser).id, authn_context=REFEDS_MFA).status_code == 302


@pytest.mark.django_db
def test_an_idp_initiated_response_is_held_to_the_required_context(crypto_backend, browser, settings):
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=REFEDS_MFA, ALLOW_IDP_INITIATED=True)
    assert b"<code>authn_context_insufficient</code>" in answer(browser, None, authn_context=PPT).content
    assert answer(browser, None, authn_context=REFEDS_MFA).status_code == 302


@pytest.mark.django_db
def test_the_idps_no_authn_context_status_is_the_same_clear_refusal(crypto_backend, browser, settings):
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=REFEDS_MFA)
    status = status_message_factory("cannot do MFA", STATUS_NO_AUTHN_CONTEXT)
    response = answer(browser, start(browser).id, status=status)
    assert response.status_code == 403, response.content[:2000]
    assert b"<code>authn_context_insufficient</code>" in response.content
    assert b"<code>idp_status</code>" not in response.content
    assert b"multi-factor authentication (REFEDS MFA)" in response.content
    [event] = ProvisioningEvent.objects.all()
    assert (event.kind, event.reason_code) == (EventKind.REJECTED, "authn_context_insufficient")


# --------------------------------------------------------------------------
# The login event records how the person authenticated


@pytest.mark.django_db
def test_the_login_event_records_the_authentication(crypto_backend, browser):
    instant = datetime.now(timezone.utc).replace(microsecond=0)
    response = browser.login(
        name_id=SUBJECT, authn_context=MICROSOFT_MFA, authn_instant=instant, authn_methods=(MICROSOFT_MFA, "x:otp")
    )
    assert response.status_code == 302, response.content[:2000]
    [event] = ProvisioningEvent.objects.all()
    assert event.kind == EventKind.CREATED
    assert event.authn == {
        "context_class": MICROSOFT_MFA,
        "instant": instant.isoformat(),
        "methods": [MICROSOFT_MFA, "x:otp"],
    }


# --------------------------------------------------------------------------
# Privileges only with MFA, and the step-up that brings them back


@pytest.mark.django_db
def test_without_the_setting_a_password_sign_in_gets_privileges(crypto_backend, browser, settings):
    idp_settings(settings, **PRIVILEGES)
    assert admin_login(browser, authn_context=PPT).status_code == 302
    assert privileges() == (True, ["operators"])
    assert {grant.authn_context for grant in Grant.objects.all()} == {PPT}


@pytest.mark.django_db
def test_a_sign_in_without_mfa_gets_in_without_privileges(crypto_backend, browser, settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    response = admin_login(browser, authn_context=PPT)
    assert response.status_code == 302, response.content[:2000]
    assert browser.client.session["_auth_user_id"]
    assert privileges() == (False, [])
    assert not Grant.objects.exists()
    event = last_login_event()
    assert (event.kind, event.reason_code) == (EventKind.CREATED, "mfa_required")
    assert event.diff["privileges_withheld"] == ["is_staff", "operators"]
    assert MFA_NOTE in event.message
    assert browser.client.session[sessions.STEP_UP] is True


@pytest.mark.django_db
@pytest.mark.parametrize("shown_by", ["class_ref", "entra_amr"])
def test_mfa_grants_privileges_and_the_grant_says_how(crypto_backend, browser, settings, shown_by):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    spec = {"authn_context": REFEDS_MFA} if shown_by == "class_ref" else {"authn_methods": (MICROSOFT_MFA,)}
    assert admin_login(browser, **spec).status_code == 302
    assert privileges() == (True, ["operators"])
    expected = REFEDS_MFA if shown_by == "class_ref" else MICROSOFT_MFA  # the method that showed MFA
    assert {(grant.kind, grant.authn_context) for grant in Grant.objects.all()} == {
        (GrantKind.STAFF, expected),
        (GrantKind.GROUP, expected),
    }
    assert last_login_event().reason_code == ""
    assert sessions.STEP_UP not in browser.client.session


@pytest.mark.django_db
def test_a_later_sign_in_without_mfa_withholds_privileges_granted_with_it(crypto_backend, browser, settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    admin_login(browser, authn_context=REFEDS_MFA)
    assert privileges() == (True, ["operators"])
    assert admin_login(Browser(Client()), authn_context=PPT).status_code == 302  # another browser, a password only
    assert privileges() == (False, [])
    assert not Grant.objects.exists()
    event = last_login_event()
    assert event.reason_code == "mfa_required"
    assert event.diff["is_staff"] == [True, False]
    assert event.diff["groups"] == {"added": [], "removed": ["operators"]}


@pytest.mark.django_db
def test_a_hand_assigned_privileged_group_is_never_touched(crypto_backend, browser, settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    admin_login(browser, authn_context=PPT)
    User.objects.get().groups.add(Group.objects.get_or_create(name="operators")[0])
    admin_login(Browser(Client()), authn_context=PPT)
    assert privileges() == (False, ["operators"])


@pytest.mark.django_db
def test_step_up_brings_the_privileges_back(crypto_backend, browser, settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    admin_login(browser, authn_context=PPT)
    assert privileges() == (False, [])
    request = browser.client.get(sessions.step_up_url(_request_of(browser), "/after/"))
    sent = sent_request(request)
    assert sent.force_authn == "true"
    assert sent.destination.startswith(IDP_A.base_url)  # the IdP this session signed in with
    classes = [ref.text for ref in sent.requested_authn_context.authn_context_class_ref]
    assert classes == [REFEDS_MFA, MICROSOFT_MFA]
    response = admin_login(browser, sent.id, authn_context=REFEDS_MFA)
    assert response.status_code == 302, response.content[:2000]
    assert privileges() == (True, ["operators"])
    assert sessions.STEP_UP not in browser.client.session
    assert sessions.step_up_url(_request_of(browser)) is None


@pytest.mark.django_db
def test_a_step_up_answered_without_mfa_still_signs_in_without_privileges(crypto_backend, browser, settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    admin_login(browser, authn_context=PPT)
    sent = sent_request(browser.client.get("/saml2/step-up/"))
    assert admin_login(browser, sent.id, authn_context=PPT).status_code == 302
    assert privileges() == (False, [])
    assert last_login_event().reason_code == "mfa_required"


@pytest.mark.django_db
def test_a_step_up_answer_with_mfa_passes_a_non_mfa_required_context(crypto_backend, browser, settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, REQUIRED_AUTHN_CONTEXT=PPT, **PRIVILEGES)
    assert admin_login(browser, authn_context=PPT).status_code == 302
    sent = sent_request(browser.client.get("/saml2/step-up/"))
    assert [ref.text for ref in sent.requested_authn_context.authn_context_class_ref] == [REFEDS_MFA, MICROSOFT_MFA]
    assert admin_login(browser, sent.id, authn_context=REFEDS_MFA).status_code == 302
    assert privileges() == (True, ["operators"])


@pytest.mark.django_db
def test_the_context_processor_offers_the_step_up_only_when_withheld(browser, settings, rf):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    admin_login(browser, authn_context=PPT)
    request = rf.get("/reports/?page=2")
    request.session = browser.client.session
    assert step_up(request) == {"saml_jit_step_up_url": "/saml2/step-up/?next=%2Freports%2F%3Fpage%3D2"}
    request.session = {}
    assert step_up(request) == {"saml_jit_step_up_url": None}


def _request_of(browser: Browser):
    """A request object carrying the browser's session (for :func:`sessions.step_up_url`)."""

    class _Request:
        session = browser.client.session

    return _Request()


# --------------------------------------------------------------------------
# Pure rules


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (REFEDS_MFA, RequiredAuthnContext((REFEDS_MFA,))),
        ([REFEDS_MFA, MICROSOFT_MFA], RequiredAuthnContext((REFEDS_MFA, MICROSOFT_MFA))),
        ({"classes": [PPT, REFEDS_MFA], "comparison": "minimum"}, RequiredAuthnContext((PPT, REFEDS_MFA), "minimum")),
    ],
)
def test_required_authn_context_forms(value, expected):
    assert required_authn_context(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        [],
        "",
        {"classes": [REFEDS_MFA], "comparison": "loose"},
        {"class": REFEDS_MFA},
        {"classes": [PPT], "comparison": "better"},
    ],
)
def test_malformed_required_authn_context_is_refused(value):
    with pytest.raises(ValueError):
        required_authn_context(value)


def test_malformed_required_authn_context_is_a_system_check_error(settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"REQUIRED_AUTHN_CONTEXT": {"comparison": "loose"}}}}
    [error] = [m for m in check_settings() if m.id == Codes.AUTHN_CONTEXT_INVALID]
    assert IDP_A.entity_id in error.msg and error.hint


def test_mfa_required_without_mfa_contexts_is_a_system_check_error(settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"PRIVILEGES_REQUIRE_MFA": True, "MFA_AUTHN_CONTEXTS": []}}}
    [error] = [m for m in check_settings() if m.id == Codes.SESSION_SETTING_INVALID]
    assert "MFA_AUTHN_CONTEXTS" in error.msg


def test_accepted_classes_per_comparison():
    assert RequiredAuthnContext((PPT, REFEDS_MFA), "better").accepted == (REFEDS_MFA,)
    for comparison in ("exact", "minimum", "maximum"):
        assert RequiredAuthnContext((PPT, REFEDS_MFA), comparison).accepted == (PPT, REFEDS_MFA)


def test_check_context_names_what_is_accepted():
    rules.check_context(Authn(context_class=REFEDS_MFA), RequiredAuthnContext((REFEDS_MFA,)))
    rules.check_context(Authn(context_class=PPT), None)
    with pytest.raises(AuthnContextRefused) as refused:
        rules.check_context(Authn(context_class=PPT), RequiredAuthnContext((PPT, REFEDS_MFA), "better"))
    assert refused.value.needed == (REFEDS_MFA,) and refused.value.status == 403


def test_shows_mfa_by_class_or_method_case_insensitively():
    defaults = app_settings.for_idp("").MFA_AUTHN_CONTEXTS
    assert rules.shows_mfa([REFEDS_MFA.upper()], [], defaults)
    assert rules.shows_mfa([PPT], ["mfa"], defaults)
    assert not rules.shows_mfa([PPT, ""], ["pwd"], defaults)


def test_the_step_up_asks_for_the_uri_mfa_contexts_or_the_required_ones(settings):
    assert rules.mfa_context(app_settings.for_idp("")) == RequiredAuthnContext((REFEDS_MFA, MICROSOFT_MFA))
    idp_settings(settings, REQUIRED_AUTHN_CONTEXT=MICROSOFT_MFA)
    assert rules.mfa_context(app_settings.for_idp(IDP_A.entity_id)) == RequiredAuthnContext((MICROSOFT_MFA,))


def _profile(context: str, methods: tuple[str, ...] = ()) -> Profile:
    return Profile(
        idp_entity_id=IDP_A.entity_id,
        subject=SUBJECT,
        name_id_format="",
        fields={},
        groups=(ADMINS,),
        authn=Authn(context_class=context),
        authn_methods=methods,
    )


def test_planning_withholds_and_takes_back_privileges_without_mfa(settings):
    idp_settings(settings, PRIVILEGES_REQUIRE_MFA=True, **PRIVILEGES)
    idp = app_settings.for_idp(IDP_A.entity_id)
    now = datetime.now(timezone.utc)
    state = GroupState(member_of=frozenset({"operators"}), granted_here=frozenset({"operators", STAFF}), is_staff=True)
    plan = plan_groups(_profile(PPT), idp, state, now)
    assert plan.withheld == {"operators", STAFF}
    assert (plan.remove, plan.revoke, plan.is_staff, plan.grants) == ({"operators"}, {"operators", STAFF}, False, {})
    granted = plan_groups(_profile(PPT, ("mfa",)), idp, state, now)
    assert not granted.withheld and set(granted.grants) == {"operators", STAFF}
