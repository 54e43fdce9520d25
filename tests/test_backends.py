"""``SamlJitBackend``: thin glue between djangosaml2 and provisioning."""

from __future__ import annotations

import pytest
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from saml2 import BINDING_HTTP_POST, saml
from saml2.client import Saml2Client

from saml_jit.backends import SamlJitBackend, outcome_of
from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.saml.config import get_sp_config
from tests.conftest import person
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, SP_ENTITY_ID

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"


@pytest.fixture
def request_(rf):
    request = rf.post("/saml2/acs/", REMOTE_ADDR="198.51.100.7")
    request.session = {}
    return request


def stock_session_info(request, *, name_id="subject-alice-0001", attributes=None, request_id="id-request-1"):
    """``session_info`` exactly as stock djangosaml2 gets it: pysaml2 parses and validates a real response."""
    data = IDP_A.post_data(
        sp_entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        name_id=name_id,
        attributes=person() if attributes is None else attributes,
        friendly_names=FRIENDLY_NAMES,
        in_response_to=request_id,
    )
    client = Saml2Client(get_sp_config())  # pysaml2 itself, on saml_jit's configuration
    response = client.parse_authn_request_response(data["SAMLResponse"], BINDING_HTTP_POST, {request_id: "/"})
    assert response is not None and response.assertion is not None
    return response.session_info(), {"assertion_id": response.assertion.id, "not_on_or_after": None}


def test_no_session_info_returns_none(request_):
    backend = SamlJitBackend()
    assert backend.authenticate(request_) is None
    assert backend.authenticate(request_, session_info=None) is None
    assert backend.authenticate(request_, session_info={}) is None
    assert backend.authenticate(None) is None
    assert not ProvisioningEvent.objects.exists()
    assert not User.objects.exists()
    assert outcome_of(request_) is None


def test_username_and_password_are_ignored(request_):
    if EMAIL_KEYED:
        local = User.objects.create_user(email="alice@example.org", password="pw-123456")
    else:
        local = User.objects.create_user(username="alice", email="alice@example.org", password="pw-123456")
    backend = SamlJitBackend()

    assert backend.authenticate(request_, username=local.get_username(), password="pw-123456") is None
    assert not ProvisioningEvent.objects.exists()
    assert not FederatedIdentity.objects.exists()


def test_username_password_alongside_session_info_change_nothing(request_):
    session_info, assertion_info = stock_session_info(request_)
    user = SamlJitBackend().authenticate(
        request_, session_info=session_info, assertion_info=assertion_info, username="mallory", password="x"
    )
    assert user is not None
    assert user.email == "alice@example.org"
    if not EMAIL_KEYED:
        assert user.username == "alice"


def test_stock_djangosaml2_session_info_fallback(request_):
    session_info, assertion_info = stock_session_info(request_)
    assert session_info["issuer"] == IDP_A.entity_id
    assert "mail" in session_info["ava"]  # pysaml2 converted the URI names

    user = SamlJitBackend().authenticate(request_, session_info=session_info, assertion_info=assertion_info)

    assert user is not None
    assert (user.email, user.first_name, user.last_name) == ("alice@example.org", "Alice", "Liddell")
    identity = FederatedIdentity.objects.get()
    assert (identity.user, identity.idp_entity_id, identity.subject) == (user, IDP_A.entity_id, "subject-alice-0001")
    assert identity.name_id_format == saml.NAMEID_FORMAT_PERSISTENT
    event = ProvisioningEvent.objects.get()
    assert event.kind == EventKind.CREATED
    assert event.assertion_id == assertion_info["assertion_id"]
    assert event.ip_address == "198.51.100.7"
    outcome = outcome_of(request_)
    assert outcome.user == user and outcome.kind == EventKind.CREATED


def test_fallback_path_through_django_authenticate(request_):
    # As stock djangosaml2's ACS calls it: auth.authenticate(request, session_info=..., ...).
    session_info, assertion_info = stock_session_info(request_)
    user = auth.authenticate(
        request_,
        session_info=session_info,
        attribute_mapping={"uid": ("username",)},  # djangosaml2's argument: ignored
        create_unknown_user=True,
        assertion_info=assertion_info,
    )
    assert user is not None
    assert user.backend == "saml_jit.backends.SamlJitBackend"
    assert ProvisioningEvent.objects.get().kind == EventKind.CREATED


def test_fallback_denial_raises_permission_denied_and_records(request_, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    session_info, assertion_info = stock_session_info(request_)
    # PermissionDenied stops django.contrib.auth from asking other backends.
    with pytest.raises(PermissionDenied):
        SamlJitBackend().authenticate(request_, session_info=session_info, assertion_info=assertion_info)
    event = ProvisioningEvent.objects.get()
    assert (event.kind, event.reason_code) == (EventKind.DENIED, "creation_disabled")
    assert outcome_of(request_).denial.code == "creation_disabled"
    assert not User.objects.exists()


def test_fallback_with_hand_made_session_info(request_):
    # The minimal shape djangosaml2 documents: issuer, a NameID object, ava.
    session_info = {
        "issuer": IDP_A.entity_id,
        "name_id": saml.NameID(text="subject-bob-7", format=saml.NAMEID_FORMAT_PERSISTENT),
        "ava": {"mail": ["bob@example.org"], "givenName": ["Bob"]},
    }
    user = SamlJitBackend().authenticate(request_, session_info=session_info, assertion_info={"assertion_id": "_x"})
    assert user is not None and user.email == "bob@example.org" and user.first_name == "Bob"
    assert FederatedIdentity.objects.get().subject == "subject-bob-7"


def test_fallback_refuses_transient_name_id(request_):
    session_info = {
        "issuer": IDP_A.entity_id,
        "name_id": saml.NameID(text="_tr4ns", format=saml.NAMEID_FORMAT_TRANSIENT),
        "ava": {"mail": ["bob@example.org"]},
    }
    with pytest.raises(PermissionDenied):
        SamlJitBackend().authenticate(request_, session_info=session_info)
    assert ProvisioningEvent.objects.get().reason_code == "transient_name_id"


def test_inactive_user_not_returned(request_, settings):
    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    session_info, assertion_info = stock_session_info(request_)
    with pytest.raises(PermissionDenied):
        SamlJitBackend().authenticate(request_, session_info=session_info, assertion_info=assertion_info)
    user = User.objects.get()
    assert not user.is_active
    outcome = outcome_of(request_)
    assert outcome.user == user and outcome.kind == EventKind.CREATED and outcome.denial is None
