"""End to end: real signed responses through the real ACS view.

Every test here goes GET /saml2/login/ -> POST /saml2/acs/ with a response
minted and signed by ``saml_jit.testing.idp.TestIdP``; pysaml2 validates it
for real. The Django test client re-raises view exceptions, so "never a 500"
is also enforced by the tests simply not blowing up.
"""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from saml2 import saml

from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.testing.idp import ATTRIBUTE_URIS
from tests.conftest import person
from tests.federation import IDP_A, IDP_B, ROGUE_CERT, ROGUE_KEY, SP_CERT

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
default_user_model_only = pytest.mark.skipif(EMAIL_KEYED, reason="needs a user model with a separate username")
email_user_model_only = pytest.mark.skipif(not EMAIL_KEYED, reason="needs a user model keyed by email")

SUBJECT = "subject-alice-0001"
USER_AGENT = "Mozilla/5.0 (saml_jit tests)"


def local_user(username: str, email: str, **extra):
    """A pre-existing local account, for either user model."""
    if EMAIL_KEYED:
        return User.objects.create_user(email=email, **extra)
    return User.objects.create_user(username=username, email=email, **extra)


def relogin(browser, **kwargs):
    """A later login, in a fresh browser session (djangosaml2's login view
    sends an already signed-in user straight to ``next``)."""
    browser.client.logout()
    return browser.login(**kwargs)


def events(**filters):
    return list(ProvisioningEvent.objects.filter(**filters).order_by("id"))


def assert_logged_in(browser, user):
    assert browser.client.session.get("_auth_user_id") == str(user.pk)


def assert_not_logged_in(browser):
    assert "_auth_user_id" not in browser.client.session


def assert_only_rejection(response, code, status=400):
    """The contract for every refused response: 4xx page, no user, one rejected event."""
    assert response.status_code == status, response.content[:2000]
    assert 400 <= response.status_code < 500
    assert f"<code>{code}</code>".encode() in response.content
    assert not User.objects.exists()
    assert not FederatedIdentity.objects.exists()
    event = ProvisioningEvent.objects.get()  # exactly one event of any kind
    assert event.kind == EventKind.REJECTED
    assert event.reason_code == code
    assert event.user is None
    assert f"#{event.pk}".encode() in response.content
    return event


def assert_only_denial(response, code, *, users=0):
    assert response.status_code == 403, response.content[:2000]
    assert f"<code>{code}</code>".encode() in response.content
    assert User.objects.count() == users
    denied = events(kind=EventKind.DENIED)
    assert len(denied) == 1, denied
    assert denied[0].reason_code == code
    return denied[0]


# --------------------------------------------------------------------------
# First login, updates, plain logins


def test_first_login_creates_user_identity_and_event(browser):
    browser.client.defaults["HTTP_USER_AGENT"] = USER_AGENT
    response = browser.login(assertion_id="_assertion-first-0001")

    assert response.status_code == 302, response.content[:2000]
    assert response["Location"] == "/"
    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == ("alice@example.org", "Alice", "Liddell")
    assert user.is_active
    assert not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser
    assert_logged_in(browser, user)

    identity = FederatedIdentity.objects.get()
    assert (identity.user, identity.idp_entity_id, identity.subject) == (user, IDP_A.entity_id, SUBJECT)
    assert identity.name_id_format == saml.NAMEID_FORMAT_PERSISTENT
    assert identity.last_assertion_id == "_assertion-first-0001"

    event = ProvisioningEvent.objects.get()
    assert event.kind == EventKind.CREATED
    assert event.source == "saml"
    assert event.user == user
    assert event.username == user.get_username()
    assert (event.idp_entity_id, event.subject) == (IDP_A.entity_id, SUBJECT)
    assert event.assertion_id == "_assertion-first-0001"
    assert event.ip_address == "127.0.0.1"
    assert event.user_agent == USER_AGENT
    assert event.diff["email"] == [None, "alice@example.org"]
    assert event.diff["first_name"] == [None, "Alice"]
    assert event.diff["last_name"] == [None, "Liddell"]
    if not EMAIL_KEYED:
        assert user.username == "alice"
        assert event.diff["username"] == [None, "alice"]
    # No attribute is stored unless allow-listed.
    assert event.attributes == {}


@email_user_model_only
def test_first_login_with_email_keyed_user_model(browser):
    response = browser.login(attributes=person(email="alice@Example.ORG"))

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    # The domain is normalised; the local part is never touched.
    assert user.get_username() == user.email == "alice@example.org"
    assert not hasattr(user, "username")
    assert_logged_in(browser, user)
    event = ProvisioningEvent.objects.get()
    assert event.kind == EventKind.CREATED
    assert event.username == "alice@example.org"
    assert set(event.diff) == {"email", "first_name", "last_name"}
    assert FederatedIdentity.objects.get().user == user


def test_second_login_updates_only_always_fields(browser, settings):
    settings.SAML_JIT = {"SYNC": {"first_name": "on_create"}}
    browser.login(assertion_id="_assertion-one")
    identity = FederatedIdentity.objects.get()
    first_seen, last_seen = identity.first_asserted_at, identity.last_asserted_at

    response = relogin(
        browser, attributes=person(given_name="Alicia", surname="Pleasance"), assertion_id="_assertion-two"
    )

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert user.first_name == "Alice"  # on_create: not synced
    assert user.last_name == "Pleasance"  # always: synced
    assert_logged_in(browser, user)
    identity.refresh_from_db()
    assert identity.last_assertion_id == "_assertion-two"
    assert identity.last_asserted_at > last_seen
    assert identity.first_asserted_at == first_seen
    assert FederatedIdentity.objects.count() == 1

    created, updated = events()
    assert created.kind == EventKind.CREATED
    assert updated.kind == EventKind.UPDATED
    assert updated.diff == {"last_name": ["Liddell", "Pleasance"]}
    assert updated.assertion_id == "_assertion-two"
    assert updated.user == user


def test_unchanged_second_login_records_login(browser):
    browser.login()
    response = relogin(browser, assertion_id="_assertion-again")

    assert response.status_code == 302
    assert User.objects.count() == 1
    created, login = events()
    assert created.kind == EventKind.CREATED
    assert login.kind == EventKind.LOGIN
    assert login.diff == {}
    assert login.assertion_id == "_assertion-again"
    assert FederatedIdentity.objects.get().last_assertion_id == "_assertion-again"


# --------------------------------------------------------------------------
# Policy denials


def test_creation_disabled_denies(browser, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    response = browser.login()

    event = assert_only_denial(response, "creation_disabled")
    assert ProvisioningEvent.objects.count() == 1
    assert not FederatedIdentity.objects.exists()
    assert event.subject == SUBJECT
    assert event.idp_entity_id == IDP_A.entity_id
    assert event.user is None
    assert_not_logged_in(browser)


def test_per_idp_override_applies_only_to_that_idp(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"CREATE_USERS": False}}}

    response_b = browser.login(idp=IDP_B, name_id="subject-b", attributes=person(email="bob@example.net"))
    assert_only_denial(response_b, "creation_disabled")
    assert events()[0].idp_entity_id == IDP_B.entity_id

    response_a = browser.login(idp=IDP_A)
    assert response_a.status_code == 302
    assert FederatedIdentity.objects.get().idp_entity_id == IDP_A.entity_id
    assert [e.kind for e in events()] == [EventKind.DENIED, EventKind.CREATED]


def test_control_characters_in_attribute_denied(browser):
    # XML 1.0 cannot carry U+0001 at all; DEL (U+007F) is a control
    # character (Unicode category Cc) that XML does allow.
    response = browser.login(attributes=person(given_name="Ali\x7fce"))

    event = assert_only_denial(response, "control_characters")
    assert ProvisioningEvent.objects.count() == 1
    assert not FederatedIdentity.objects.exists()
    assert "Ali" not in event.message  # no attribute values in the message


def test_tab_in_display_field_denied(browser):
    response = browser.login(attributes=person(surname="Lid\tdell"))
    assert_only_denial(response, "control_characters")


def test_email_with_trailing_space_denied(browser):
    response = browser.login(attributes=person(email="alice@example.org "))
    event = assert_only_denial(response, "whitespace")
    assert not FederatedIdentity.objects.exists()
    assert event.idp_entity_id == IDP_A.entity_id
    assert "email" in event.message and "alice@" not in event.message


def test_attribute_denial_event_names_the_subject(browser):
    browser.login(attributes=person(email="alice@example.org "), assertion_id="_bad-email")
    event = ProvisioningEvent.objects.get()
    assert event.assertion_id == "_bad-email"
    assert event.subject == SUBJECT


def test_transient_name_id_denied(browser):
    response = browser.login(name_id="_transient-1234", name_id_format=saml.NAMEID_FORMAT_TRANSIENT)
    assert_only_denial(response, "transient_name_id")
    assert not FederatedIdentity.objects.exists()


def test_allowed_email_domains(browser, settings):
    settings.SAML_JIT = {"ALLOWED_EMAIL_DOMAINS": ["example.com", "*.example.net"]}
    response = browser.login()
    assert_only_denial(response, "email_domain_not_allowed")
    assert not FederatedIdentity.objects.exists()

    response = browser.login(name_id="subject-bob", attributes=person(email="bob@staff.example.net"))
    assert response.status_code == 302
    assert User.objects.get().email == "bob@staff.example.net"


def test_new_users_held_for_approval(browser, settings):
    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    response = browser.login()

    assert response.status_code == 403
    assert b"awaiting approval" in response.content
    user = User.objects.get()
    assert not user.is_active
    assert_not_logged_in(browser)
    assert FederatedIdentity.objects.get().user == user
    (created,) = events()
    assert created.kind == EventKind.CREATED
    assert created.user == user
    assert "held for approval" in created.message

    response = browser.login()
    assert response.status_code == 403
    assert b"<code>pending_approval</code>" in response.content
    assert b"awaiting approval" in response.content
    assert_not_logged_in(browser)
    _created, denied = events()
    assert (denied.kind, denied.reason_code, denied.user) == (EventKind.DENIED, "pending_approval", user)
    assert User.objects.count() == 1


# --------------------------------------------------------------------------
# Several IdPs, linking


def test_other_idp_same_name_id_gets_separate_user(browser):
    browser.login(idp=IDP_A, name_id="shared-subject")
    response = relogin(browser, idp=IDP_B, name_id="shared-subject", attributes=person(email="bob@example.net"))

    assert response.status_code == 302
    user_a = FederatedIdentity.objects.get(idp_entity_id=IDP_A.entity_id).user
    user_b = FederatedIdentity.objects.get(idp_entity_id=IDP_B.entity_id).user
    assert user_a != user_b
    assert (user_a.email, user_b.email) == ("alice@example.org", "bob@example.net")
    assert_logged_in(browser, user_b)
    assert [e.kind for e in events()] == [EventKind.CREATED, EventKind.CREATED]


def test_same_email_from_other_idp_without_linking_denied(browser):
    browser.login(idp=IDP_A)
    response = relogin(browser, idp=IDP_B, name_id="subject-b-alice")

    assert response.status_code == 403
    assert b"<code>email_in_use</code>" in response.content
    assert User.objects.count() == 1
    assert FederatedIdentity.objects.count() == 1
    _created, denied = events()
    assert (denied.kind, denied.reason_code, denied.idp_entity_id) == (
        EventKind.DENIED,
        "email_in_use",
        IDP_B.entity_id,
    )


def test_link_by_email_for_idp(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"LINK_BY_EMAIL": True}}}
    browser.login(idp=IDP_A)
    user = User.objects.get()

    response = relogin(browser, idp=IDP_B, name_id="subject-b-alice", assertion_id="_link-1")

    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == 1
    assert_logged_in(browser, user)
    assert set(user.saml_identities.values_list("idp_entity_id", "subject")) == {
        (IDP_A.entity_id, SUBJECT),
        (IDP_B.entity_id, "subject-b-alice"),
    }
    _created, linked = events()
    assert (linked.kind, linked.user, linked.idp_entity_id) == (EventKind.LINKED, user, IDP_B.entity_id)
    assert linked.assertion_id == "_link-1"


def test_link_by_email_refused_for_staff(browser, settings):
    settings.SAML_JIT = {"LINK_BY_EMAIL": True}
    staff = local_user("boss", "alice@example.org", is_staff=True)

    response = browser.login()

    assert response.status_code == 403
    assert b"<code>link_refused_privileged</code>" in response.content
    assert not FederatedIdentity.objects.exists()
    assert User.objects.get() == staff
    (denied,) = events()
    assert denied.reason_code == "link_refused_privileged"
    assert_not_logged_in(browser)


# --------------------------------------------------------------------------
# Subject and username


def test_subject_attribute_instead_of_name_id(browser, settings):
    settings.SAML_JIT = {"SUBJECT_ATTRIBUTE": "subject-id"}
    attrs = person(**{"subject-id": ["8f3a2c@example.org"]})
    # A transient NameID is fine when the subject comes from an attribute.
    response = browser.login(name_id="_t1", name_id_format=saml.NAMEID_FORMAT_TRANSIENT, attributes=attrs)
    assert response.status_code == 302, response.content[:2000]
    identity = FederatedIdentity.objects.get()
    assert identity.subject == "8f3a2c@example.org"

    response = relogin(browser, name_id="_t2", name_id_format=saml.NAMEID_FORMAT_TRANSIENT, attributes=attrs)
    assert response.status_code == 302
    assert User.objects.count() == 1
    assert [e.kind for e in events()] == [EventKind.CREATED, EventKind.LOGIN]
    assert {e.subject for e in events()} == {"8f3a2c@example.org"}


def test_subject_attribute_missing_denied(browser, settings):
    settings.SAML_JIT = {"SUBJECT_ATTRIBUTE": ATTRIBUTE_URIS["subject-id"]}
    response = browser.login()
    assert_only_denial(response, "missing_subject")


@default_user_model_only
def test_username_collision_gets_number(browser):
    local = local_user("alice", "alice@elsewhere.example")
    response = browser.login()

    assert response.status_code == 302, response.content[:2000]
    user = FederatedIdentity.objects.get().user
    assert user != local
    assert user.username == "alice2"
    assert ProvisioningEvent.objects.get().diff["username"] == [None, "alice2"]


# --------------------------------------------------------------------------
# Redirects


def test_relay_state_offsite_falls_back(browser):
    response = browser.login(relay_state="https://evil.example/")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_relay_state_local_path_honoured(browser):
    response = browser.login(relay_state="/somewhere/")
    assert response.status_code == 302
    assert response["Location"] == "/somewhere/"


# --------------------------------------------------------------------------
# Response shapes


def test_encrypted_assertion_logs_in(browser):
    response = browser.login(encrypt_for_cert=SP_CERT)
    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert user.email == "alice@example.org"
    assert_logged_in(browser, user)
    assert ProvisioningEvent.objects.get().kind == EventKind.CREATED


def test_basic_attribute_names_map_the_same(browser):
    attrs = {"mail": ["alice@example.org"], "givenName": ["Alice"], "sn": ["Liddell"]}
    response = browser.login(attributes=attrs, name_format="basic", friendly_names={})
    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == ("alice@example.org", "Alice", "Liddell")


def test_event_attributes_allow_list(browser, settings):
    settings.SAML_JIT = {"EVENT_ATTRIBUTES": ["mail", "eduPersonAffiliation"]}
    attrs = person(eduPersonAffiliation=["member", "staff"], uid=["alice42"])
    browser.login(attributes=attrs)

    event = ProvisioningEvent.objects.get()
    assert event.attributes == {"mail": ["alice@example.org"], "eduPersonAffiliation": ["member", "staff"]}


def test_event_attributes_stored_on_denial_too(browser, settings):
    settings.SAML_JIT = {"EVENT_ATTRIBUTES": ["mail"], "CREATE_USERS": False}
    browser.login()
    assert ProvisioningEvent.objects.get().attributes == {"mail": ["alice@example.org"]}


# --------------------------------------------------------------------------
# Rejected by pysaml2 (or by saml_jit's own pre-checks)


def test_bad_signature_rejected(browser):
    response = browser.login(signing_key_file=ROGUE_KEY, signing_cert_file=ROGUE_CERT)
    event = assert_only_rejection(response, "bad_signature")
    assert event.idp_entity_id == IDP_A.entity_id  # the claimed issuer, for review


def test_rogue_key_with_idp_certificate_in_keyinfo_rejected(browser):
    # KeyInfo claims the IdP's own certificate; the signature still does not verify.
    response = browser.login(signing_key_file=ROGUE_KEY)
    assert_only_rejection(response, "bad_signature")


def test_tampered_attribute_rejected(browser):
    response = browser.login(tamper=lambda xml: xml.replace("alice@example.org", "mallory@example.org"))
    assert_only_rejection(response, "bad_signature")


def test_tampered_name_id_rejected(browser):
    response = browser.login(tamper=lambda xml: xml.replace(SUBJECT, "subject-mallory"))
    assert_only_rejection(response, "bad_signature")


def test_expired_rejected(browser):
    response = browser.login(now=-3600)
    assert_only_rejection(response, "expired")


def test_not_yet_valid_rejected(browser):
    response = browser.login(now=3600)
    assert_only_rejection(response, "not_yet_valid")


def test_wrong_audience_rejected(browser):
    response = browser.login(audience="https://other.example/")
    assert_only_rejection(response, "wrong_audience")


def test_unsolicited_rejected(browser):
    response = browser.post_response(name_id=SUBJECT, attributes=person())
    assert_only_rejection(response, "unsolicited")


def test_answer_to_unknown_request_rejected(browser):
    browser.start_login()
    response = browser.post_response(name_id=SUBJECT, attributes=person(), in_response_to="id-not-from-us")
    assert_only_rejection(response, "unsolicited")


def test_wrong_destination_is_4xx(browser):
    response = browser.login(destination="https://evil.example/acs")
    # Stock djangosaml2 answers 500 here; saml_jit must not.
    assert 400 <= response.status_code < 500
    assert not User.objects.exists()
    event = ProvisioningEvent.objects.get()
    assert event.kind == EventKind.REJECTED
    assert event.idp_entity_id == IDP_A.entity_id


def test_wrong_destination_reason_code(browser):
    response = browser.login(destination="https://evil.example/acs")
    assert_only_rejection(response, "wrong_destination")


def test_replayed_response_after_success_is_not_a_500(browser):
    request_id = browser.start_login()
    data = IDP_A.post_data(
        sp_entity_id="http://testserver/saml2/metadata/",
        acs_url="http://testserver/saml2/acs/",
        name_id=SUBJECT,
        attributes=person(),
        in_response_to=request_id,
    )
    assert browser.client.post("/saml2/acs/", data).status_code == 302
    # The outstanding request was consumed: posting the same response again is unsolicited.
    again = browser.client.post("/saml2/acs/", data)
    assert again.status_code == 400
    assert b"<code>unsolicited</code>" in again.content
    assert User.objects.count() == 1
    assert [e.kind for e in events()] == [EventKind.CREATED, EventKind.REJECTED]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _truncated_response() -> str:
    xml = IDP_A.make_response(
        sp_entity_id="http://testserver/saml2/metadata/",
        acs_url="http://testserver/saml2/acs/",
        name_id=SUBJECT,
        attributes=person(),
    )
    return _b64(xml.encode()[: len(xml) // 2])


@pytest.mark.parametrize(
    "saml_response",
    [
        pytest.param("not base64!!", id="not-base64"),
        pytest.param(_b64(b"this is not XML at all"), id="base64-of-text"),
        pytest.param(_b64(b"\x00\xff\xfe binary"), id="base64-of-binary"),
        pytest.param(_truncated_response(), id="truncated-xml"),
        pytest.param(_b64(b"<html><body>hello</body></html>"), id="xml-but-not-a-saml-response"),
    ],
)
def test_garbage_body_rejected(browser, saml_response):
    browser.start_login()
    response = browser.client.post("/saml2/acs/", {"SAMLResponse": saml_response})
    assert_only_rejection(response, "malformed_response")


def test_garbage_body_is_never_a_500(browser):
    # Whatever the code, a body that is not base64 is a 4xx with one rejected event.
    response = browser.client.post("/saml2/acs/", {"SAMLResponse": "not base64!!"})
    assert 400 <= response.status_code < 500
    assert ProvisioningEvent.objects.get().kind == EventKind.REJECTED
    assert not User.objects.exists()


def test_xml_bomb_rejected(browser):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>'
    )
    browser.start_login()
    response = browser.client.post("/saml2/acs/", {"SAMLResponse": _b64(bomb)})
    assert_only_rejection(response, "dtd_forbidden")


@pytest.mark.parametrize("data", [{}, {"SAMLResponse": ""}, {"RelayState": "/"}], ids=["empty", "blank", "relay-only"])
def test_missing_saml_response_rejected(browser, data):
    response = browser.client.post("/saml2/acs/", data)
    assert_only_rejection(response, "missing_response")


def test_oversized_response_rejected(browser, settings):
    settings.SAML_JIT = {"MAX_RESPONSE_SIZE": 1000}
    response = browser.login()
    assert_only_rejection(response, "response_too_large", status=413)


def test_rejection_records_client_ip_and_user_agent(browser):
    browser.client.defaults["HTTP_USER_AGENT"] = USER_AGENT
    browser.login(now=-3600)
    event = ProvisioningEvent.objects.get()
    assert (event.ip_address, event.user_agent) == ("127.0.0.1", USER_AGENT)
