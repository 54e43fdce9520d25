# ruff: noqa: F811 - fixtures are imported from tests.scim_helpers
"""SCIM bearer tokens: hashing, refusal, revocation, last use, the command and the admin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from saml_jit.models import EventKind, ProvisioningEvent, ScimClient
from saml_jit.scim import auth
from tests.federation import IDP_A
from tests.scim_helpers import Scim, _clear_cache, assert_error, scim  # noqa: F401 - fixtures

pytest.importorskip("scim2_server", reason="SCIM needs the scim extra (Python 3.11+)")
pytestmark = pytest.mark.django_db


def refused():
    return list(ProvisioningEvent.objects.filter(kind=EventKind.TOKEN_REFUSED).order_by("id"))


def test_token_is_stored_only_as_a_hash(scim):
    record = ScimClient.objects.get()
    assert scim.token.startswith(auth.TOKEN_PREFIX)
    assert record.token_hash == auth.hash_token(scim.token)
    assert scim.token not in str(ScimClient.objects.values().get())


@pytest.mark.parametrize("path", ["/Users", "/Users/1", "/Groups", "/ServiceProviderConfig", "/Schemas", "/Nothing"])
@pytest.mark.parametrize("token", ["", "wrong", "saml_jit_scim_" + "x" * 43])
def test_missing_or_wrong_token_is_401_revealing_nothing(scim, path, token):
    response = scim.get(path, token=token)
    body = assert_error(response, 401)
    assert set(body) == {"schemas", "status", "detail"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_basic_auth_is_refused(scim):
    response = scim.client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Basic {scim.token}")
    assert response.status_code == 401


def test_refusal_is_recorded_once_per_interval_without_the_token(scim):
    scim.get("/Users", token="wrong-token-1")
    scim.get("/Users", token="wrong-token-2")
    (event,) = refused()
    assert (event.source, event.reason_code, event.ip_address) == ("scim", "invalid_token", "127.0.0.1")
    assert "wrong-token" not in str(ProvisioningEvent.objects.values().get())


def test_refusal_events_without_rate_limit(scim, settings):
    settings.SAML_JIT = {"SCIM_REFUSAL_EVENT_INTERVAL": 0}
    scim.get("/Users", token="")
    scim.get("/Users", token="nope")
    assert [e.reason_code for e in refused()] == ["missing_token", "invalid_token"]


def test_revoked_token_is_refused(scim):
    auth.revoke(scim.record)
    assert_error(scim.get("/Users"), 401)
    (event,) = refused()
    assert (event.reason_code, event.actor, event.idp_entity_id) == ("revoked_token", "okta", IDP_A.entity_id)


def test_last_use_is_recorded(scim):
    assert ScimClient.objects.get().last_used_at is None
    scim.get("/Users")
    assert ScimClient.objects.get().last_used_at is not None


def test_writes_need_no_csrf_token(scim):
    client = Client(enforce_csrf_checks=True)
    response = client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {scim.token}")
    assert response.status_code == 200
    checked = Scim(client, scim.token, scim.record)
    assert (
        checked.post(
            "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"}
        ).status_code
        == 201
    )


# --------------------------------------------------------------------------
# manage.py saml_jit_scim_token


def run(*args):
    out = StringIO()
    call_command("saml_jit_scim_token", *args, stdout=out)
    return out.getvalue()


def test_command_create_list_revoke():
    output = run("create", "--name", "okta", "--idp", IDP_A.entity_id)
    token = output.strip().splitlines()[-1]
    assert token.startswith(auth.TOKEN_PREFIX)
    record = ScimClient.objects.get()
    assert (record.name, record.idp_entity_id, record.token_hash) == ("okta", IDP_A.entity_id, auth.hash_token(token))
    assert Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200

    listing = run("list")
    assert "okta" in listing and "active" in listing and token not in listing and record.token_hash not in listing

    run("revoke", "okta")
    assert ScimClient.objects.get().revoked
    assert Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert "revoked" in run("list")


def test_command_refuses_duplicates_and_unknown_names():
    run("create", "--name", "okta", "--idp", IDP_A.entity_id)
    with pytest.raises(CommandError):
        run("create", "--name", "okta", "--idp", IDP_A.entity_id)
    with pytest.raises(CommandError):
        run("revoke", "nobody")


# --------------------------------------------------------------------------
# Admin


@pytest.fixture
def admin_client(client):
    user_model = get_user_model()
    fields = {user_model.USERNAME_FIELD: "admin@example.org" if user_model.USERNAME_FIELD == "email" else "admin"}
    admin = user_model.objects.create_superuser(
        password="pw", **fields, **({} if "email" in fields else {"email": "a@e.org"})
    )
    client.force_login(admin)
    return client


def test_admin_creates_a_client_and_shows_the_token_once(admin_client):
    response = admin_client.post(
        "/admin/saml_jit/scimclient/add/", {"name": "okta", "idp_entity_id": IDP_A.entity_id}, follow=True
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    (shown,) = [m for m in messages if auth.TOKEN_PREFIX in m]
    token = shown.split(": ")[-1].strip()
    record = ScimClient.objects.get()
    assert record.token_hash == auth.hash_token(token)

    change = admin_client.get(f"/admin/saml_jit/scimclient/{record.pk}/change/")
    assert token.encode() not in change.content
    assert record.token_hash.encode() not in change.content
    listing = admin_client.get("/admin/saml_jit/scimclient/")
    assert record.token_hash.encode() not in listing.content and token.encode() not in listing.content


def test_admin_revoke_action(admin_client):
    record, token = auth.create_client("okta", IDP_A.entity_id)
    response = admin_client.post(
        "/admin/saml_jit/scimclient/", {"action": "revoke", "_selected_action": [record.pk]}, follow=True
    )
    assert response.status_code == 200
    record.refresh_from_db()
    assert record.revoked and record.revoked_at is not None
    assert Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
