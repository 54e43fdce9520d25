# ruff: noqa: F811 - fixtures are imported from tests.scim_helpers
"""SCIM lifecycle end to end: pre-provisioning joins the first SAML login; deprovisioning
ends sessions, removes grants and is final at the ACS."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.contrib.auth import HASH_SESSION_KEY, get_user
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.test import Client

from saml_jit.models import EventKind, EventSource, FederatedIdentity, Grant, GrantKind, ProvisioningEvent
from tests.conftest import person
from tests.federation import IDP_A, IDP_B
from tests.scim_helpers import User, _clear_cache, patch, scim, user_name  # noqa: F401 - fixtures

pytest.importorskip("scim2_server", reason="SCIM needs the scim extra (Python 3.11+)")
pytestmark = pytest.mark.django_db

SUBJECT = "subject-alice-0001"
DEACTIVATE = patch({"op": "Replace", "path": "active", "value": "False"})
REACTIVATE = patch({"op": "Replace", "path": "active", "value": "True"})


def saml_events():
    return list(ProvisioningEvent.objects.filter(source=EventSource.SAML).order_by("id"))


def session_user(engine: str, session_key: str):
    request = HttpRequest()
    request.session = import_module(engine).SessionStore(session_key)
    return get_user(request)


# --------------------------------------------------------------------------
# Pre-provisioning


def test_scim_user_is_the_account_of_the_first_saml_login(scim, browser):
    created = scim.create_user(external_id=SUBJECT)

    response = browser.login(idp=IDP_A, name_id=SUBJECT)

    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == 1
    user = User.objects.get()
    assert str(user.pk) == created["id"]
    assert int(browser.client.session["_auth_user_id"]) == user.pk
    assert FederatedIdentity.objects.get().user == user
    (login,) = saml_events()
    assert login.kind == EventKind.LOGIN
    assert (login.user, login.subject) == (user, SUBJECT)


def test_first_login_updates_what_scim_sent_differently(scim, browser):
    scim.create_user(external_id=SUBJECT, name={"givenName": "Al", "familyName": "Liddell"})
    response = browser.login(idp=IDP_A, name_id=SUBJECT, attributes=person())

    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == 1
    (updated,) = saml_events()
    assert updated.kind == EventKind.UPDATED
    assert updated.diff["first_name"] == ["Al", "Alice"]


def test_other_idp_with_the_same_subject_does_not_join(scim, browser):
    scim.create_user(external_id=SUBJECT)
    response = browser.login(idp=IDP_B, name_id=SUBJECT, attributes=person(email="bob@example.net"))
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == 2


# --------------------------------------------------------------------------
# Deprovisioning


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cache"])
def test_deactivation_ends_every_session(scim, settings, engine):
    settings.SESSION_ENGINE = engine
    created = scim.create_user(external_id=SUBJECT)
    user = User.objects.get()
    browsers = [Client(), Client()]
    for browser_client in browsers:
        browser_client.force_login(user)
    keys = [browser_client.session.session_key for browser_client in browsers]
    assert all(session_user(engine, key) == user for key in keys)

    response = scim.patch(f"/Users/{created['id']}", DEACTIVATE)
    assert response.status_code == 200, response.content

    user.refresh_from_db()
    assert not user.is_active
    for key in keys:
        assert session_user(engine, key).is_anonymous
    if engine.endswith(".db"):
        assert not Session.objects.filter(session_key__in=keys).exists()
    deactivated = ProvisioningEvent.objects.get(kind=EventKind.DEACTIVATED)
    assert deactivated.source == EventSource.SCIM and deactivated.actor == "okta"


@pytest.mark.parametrize(
    "engine", ["django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.signed_cookies"]
)
def test_sessions_stay_ended_after_reactivation(scim, settings, engine):
    # The session auth hash changed: reactivating does not revive old sessions.
    settings.SESSION_ENGINE = engine
    created = scim.create_user(external_id=SUBJECT)
    user = User.objects.get()
    browser_client = Client()
    browser_client.force_login(user)
    old_hash = browser_client.session[HASH_SESSION_KEY]
    session_key = browser_client.session.session_key
    assert session_user(engine, session_key) == user

    scim.patch(f"/Users/{created['id']}", DEACTIVATE)
    scim.patch(f"/Users/{created['id']}", REACTIVATE)

    user.refresh_from_db()
    assert user.is_active
    assert user.get_session_auth_hash() != old_hash
    assert session_user(engine, session_key).is_anonymous


def test_deactivation_removes_the_idps_grants_only(scim):
    created = scim.create_user(external_id=SUBJECT)
    user = User.objects.get()
    saml_group = Group.objects.create(name="from-saml")
    other_group = Group.objects.create(name="from-idp-b")
    user.groups.add(saml_group, other_group)
    user.is_staff = True
    user.save()
    Grant.objects.create(user=user, idp_entity_id=IDP_A.entity_id, kind=GrantKind.GROUP, group=saml_group)
    Grant.objects.create(user=user, idp_entity_id=IDP_A.entity_id, kind=GrantKind.STAFF)
    kept = Grant.objects.create(user=user, idp_entity_id=IDP_B.entity_id, kind=GrantKind.GROUP, group=other_group)

    scim.patch(f"/Users/{created['id']}", DEACTIVATE)

    user.refresh_from_db()
    assert not user.is_staff
    assert list(user.groups.all()) == [other_group]
    assert list(Grant.objects.all()) == [kept]
    assert ProvisioningEvent.objects.filter(kind=EventKind.EXPIRED).count() == 2


def test_deactivated_user_is_refused_at_the_acs_until_reactivated(scim, browser):
    created = scim.create_user(external_id=SUBJECT)
    assert browser.login(idp=IDP_A, name_id=SUBJECT).status_code == 302

    scim.patch(f"/Users/{created['id']}", DEACTIVATE)
    browser.client.logout()
    response = browser.login(idp=IDP_A, name_id=SUBJECT)

    assert response.status_code == 403
    assert b"<code>account_deprovisioned</code>" in response.content
    assert not User.objects.get().is_active
    denied = ProvisioningEvent.objects.filter(kind=EventKind.DENIED).get()
    assert denied.reason_code == "account_deprovisioned"
    assert User.objects.count() == 1

    scim.patch(f"/Users/{created['id']}", REACTIVATE)
    response = browser.login(idp=IDP_A, name_id=SUBJECT)
    assert response.status_code == 302, response.content[:2000]


def test_scim_delete_is_refused_at_the_acs(scim, browser):
    created = scim.create_user(external_id=SUBJECT)
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    response = browser.login(idp=IDP_A, name_id=SUBJECT)
    assert response.status_code == 403
    assert User.objects.count() == 1


# --------------------------------------------------------------------------
# The lifecycle over SCIM


def test_scim_create_starts_a_scim_lifecycle_without_assertions(scim, browser):
    from saml_jit.models import AccountLifecycle

    scim.create_user(external_id=SUBJECT)
    row = AccountLifecycle.objects.get()
    identity = FederatedIdentity.objects.get()
    assert (row.state, row.source, row.created_by, row.actor) == ("active", "scim", "scim", "okta")
    assert row.last_scim_at is not None
    assert identity.first_asserted_at is None and identity.last_asserted_at is None and identity.bound_at
    browser.login(idp=IDP_A, name_id=SUBJECT)
    identity.refresh_from_db()
    assert identity.first_asserted_at == identity.last_asserted_at is not None


def test_scim_deprovisioning_is_recorded_on_the_lifecycle(scim):
    from saml_jit.models import AccountLifecycle

    created = scim.create_user(external_id=SUBJECT)
    AccountLifecycle.objects.update(last_scim_at=None)
    scim.patch(f"/Users/{created['id']}", DEACTIVATE)
    row = AccountLifecycle.objects.get()
    assert (row.state, row.source, row.reason_code, row.actor) == ("deprovisioned", "scim", "scim_deactivated", "okta")
    assert row.last_scim_at is not None  # the touch is evidence
    scim.patch(f"/Users/{created['id']}", DEACTIVATE)  # again: nothing changes, no second event
    assert ProvisioningEvent.objects.filter(kind=EventKind.DEACTIVATED).count() == 1
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    assert ProvisioningEvent.objects.filter(kind=EventKind.DEACTIVATED).count() == 1


def test_scim_delete_records_its_reason(scim):
    created = scim.create_user(external_id=SUBJECT)
    scim.delete(f"/Users/{created['id']}")
    event = ProvisioningEvent.objects.get(kind=EventKind.DEACTIVATED)
    assert (event.reason_code, event.actor, event.subject) == ("scim_delete", "okta", SUBJECT)


def test_scim_never_approves_a_pending_account(scim, browser, settings):
    from saml_jit.models import AccountLifecycle

    settings.SAML_JIT = {"NEW_USERS_ACTIVE": False}
    browser.login(idp=IDP_A, name_id=SUBJECT)
    user = User.objects.get()
    response = scim.get(f"/Users/{user.pk}")
    assert response.status_code == 200 and response.json()["active"] is False
    scim.patch(f"/Users/{user.pk}", REACTIVATE)
    assert AccountLifecycle.objects.get().state == "pending_approval"
    assert scim.get(f"/Users/{user.pk}").json()["active"] is False


def test_scim_reactivates_what_an_administrator_deprovisioned(scim, browser):
    from saml_jit import lifecycle as rules
    from saml_jit.provisioning import lifecycle

    created = scim.create_user(external_id=SUBJECT)
    user = User.objects.get()
    lifecycle.transition(user, rules.ADMIN_DEPROVISION, lifecycle.Context(actor="ops"))
    assert browser.login(idp=IDP_A, name_id=SUBJECT).status_code == 403
    scim.patch(f"/Users/{created['id']}", REACTIVATE)
    assert browser.login(idp=IDP_A, name_id=SUBJECT).status_code == 302
