"""Replay protection: an assertion is accepted once, ever (until it expires).

Real logins through ``/saml2/login/`` and the real ACS. A replay here is the
same assertion ID from the same IdP answering a *different* request (the
outstanding-request check alone cannot catch it), or the same bytes of an
IdP-initiated response posted again. With the database store the record is
the login's own event (one consuming event per (IdP, assertion ID)).
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from saml_jit import events
from saml_jit.models import ASSERTION_CONSUMING_KINDS, EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.policy import Policy
from saml_jit.provisioning import replay
from tests.conftest import Browser
from tests.federation import IDP_A, IDP_B
from tests.test_security import Snapshot, assert_refused, attrs, craft, post, stock_acs

pytestmark = pytest.mark.django_db

User = get_user_model()


def new_id() -> str:
    return f"_replay-{uuid.uuid4().hex}"


@pytest.fixture
def attacker() -> Browser:
    """Another browser, with its own session and its own login request."""
    return Browser(Client())


def login_once(browser, assertion_id: str, idp=IDP_A, **kwargs):
    if idp is IDP_B:  # somebody else, at the other IdP
        kwargs.setdefault("name_id", "subject-bob-0002")
        kwargs.setdefault("attributes", attrs(uid="bob", email="bob@example.net", given_name="Bob"))
    response = post(browser, craft(browser, idp, assertion_id=assertion_id, **kwargs))
    assert response.status_code == 302, response.content[:2000]
    return response


def consumed() -> list[tuple[str, str, str]]:
    """(IdP, assertion ID, kind) of every event that used an assertion up: the replay records."""
    return sorted(
        ProvisioningEvent.objects.filter(kind__in=ASSERTION_CONSUMING_KINDS)
        .exclude(assertion_id="")
        .values_list("idp_entity_id", "assertion_id", "kind")
    )


def assert_replay_rejected(browser, data):
    before = Snapshot.take(browser)
    response = post(browser, data)
    event = assert_refused(browser, response, before, EventKind.REJECTED, "replay", 400)
    assert "_auth_user_id" not in browser.client.session
    return event


# --------------------------------------------------------------------------
# The database store (default)


def test_same_assertion_id_under_another_request_is_a_replay(browser, attacker, settings):
    assertion_id = new_id()
    login_once(browser, assertion_id)
    assert [e.kind for e in ProvisioningEvent.objects.all()] == [EventKind.CREATED]

    data = craft(attacker, assertion_id=assertion_id)  # answers the attacker's own, real request
    event = assert_replay_rejected(attacker, data)
    assert (event.idp_entity_id, event.assertion_id) == (IDP_A.entity_id, assertion_id)
    assert not ProvisioningEvent.objects.filter(kind__in=[EventKind.LOGIN, EventKind.UPDATED]).exists()
    assert consumed() == [(IDP_A.entity_id, assertion_id, EventKind.CREATED)]

    # Stock djangosaml2 keeps no record of used assertions: the replay signs in.
    stock = stock_acs(attacker, settings, data)
    assert stock.logged_in_as == User.objects.get().get_username(), stock


def test_replayed_idp_initiated_response_same_bytes(browser, attacker, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_IDP_INITIATED": True}}}
    data = dict(craft(browser, start=False, in_response_to=None, assertion_id=new_id()))
    assert post(browser, data).status_code == 302
    assert_replay_rejected(attacker, data)
    stock = stock_acs(attacker, settings, data, allow_unsolicited=True)
    assert stock.logged_in_as is not None, stock


def test_replayed_denied_assertion_is_a_replay(browser, attacker, settings):
    settings.SAML_JIT = {"CREATE_USERS": False}
    assertion_id = new_id()
    first = post(browser, craft(browser, assertion_id=assertion_id))
    assert first.status_code == 403
    assert [(e.kind, e.reason_code) for e in ProvisioningEvent.objects.all()] == [
        (EventKind.DENIED, "creation_disabled")
    ]
    assert consumed() == [(IDP_A.entity_id, assertion_id, EventKind.DENIED)]  # a denial uses it up too
    # Even once creation is allowed, the refused assertion cannot be used.
    settings.SAML_JIT = {}
    assert_replay_rejected(attacker, craft(attacker, assertion_id=assertion_id))


def test_same_assertion_id_from_another_idp_is_independent(browser, attacker):
    assertion_id = new_id()
    login_once(browser, assertion_id, IDP_A)
    login_once(attacker, assertion_id, IDP_B)
    assert User.objects.count() == 2
    assert consumed() == sorted(
        [(IDP_A.entity_id, assertion_id, EventKind.CREATED), (IDP_B.entity_id, assertion_id, EventKind.CREATED)]
    )


def test_replay_of_an_existing_users_assertion_changes_nothing(browser, attacker):
    assertion_id = new_id()
    login_once(browser, assertion_id)
    user = User.objects.get()
    # The replay carries other attribute values: none of them may be applied.
    data = craft(attacker, assertion_id=assertion_id, attributes=attrs(given_name="Mallory", surname="Evil"))
    assert_replay_rejected(attacker, data)
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Alice", "Liddell")
    assert FederatedIdentity.objects.get().last_assertion_id == assertion_id


def test_the_event_row_is_the_replay_record():
    """The database itself refuses a second consuming event for one (IdP, assertion ID)."""
    ids = {"idp_entity_id": IDP_A.entity_id, "assertion_id": "_once"}
    events.record(EventKind.LOGIN, **ids)
    for kind in ASSERTION_CONSUMING_KINDS:
        with pytest.raises(IntegrityError), transaction.atomic():
            events.record(kind, **ids)
    # Not consuming: any number of them (each replay attempt leaves one).
    events.record(EventKind.REJECTED, reason_code="replay", **ids)
    events.record(EventKind.REJECTED, reason_code="replay", **ids)
    # Another IdP, or no assertion ID at all (SCIM, admin, system events).
    events.record(EventKind.LOGIN, idp_entity_id=IDP_B.entity_id, assertion_id="_once")
    events.record(EventKind.UPDATED, idp_entity_id=IDP_A.entity_id)
    events.record(EventKind.UPDATED, idp_entity_id=IDP_A.entity_id)
    assert ProvisioningEvent.objects.count() == 6


def test_guard_window_follows_the_freshness_settings(settings):
    settings.SAML_JIT = {"MAX_RESPONSE_AGE": 600, "CLOCK_SKEW": 60}
    assert replay.guard_window() == timedelta(seconds=720)


def test_denial_consumes_the_assertion(browser, settings):
    settings.SAML_JIT = {"ALLOWED_EMAIL_DOMAINS": ["example.com"]}
    response = post(browser, craft(browser, assertion_id=new_id()))
    assert response.status_code == 403
    assert [kind for _, _, kind in consumed()] == [EventKind.DENIED]
    assert ProvisioningEvent.objects.get().reason_code == "email_domain_not_allowed"


class ExplodingPolicy(Policy):
    """Fails inside the login transaction, before its event (the replay record) is written."""

    def populate_fields(self, request, profile, settings, account, fields):
        raise RuntimeError("the login transaction fails")


def test_consumed_row_rolls_back_with_a_failed_login(browser, attacker, settings):
    settings.SAML_JIT = {"POLICY": f"{__name__}.ExplodingPolicy"}
    assertion_id = new_id()
    with pytest.raises(RuntimeError, match="login transaction fails"):
        post(browser, craft(browser, assertion_id=assertion_id))
    # Nothing was written…
    assert not User.objects.exists() and not ProvisioningEvent.objects.exists()
    # …so the assertion was not burned by a login that never happened.
    settings.SAML_JIT = {}
    login_once(attacker, assertion_id)
    assert consumed() == [(IDP_A.entity_id, assertion_id, EventKind.CREATED)]


# --------------------------------------------------------------------------
# The cache store


@pytest.fixture
def locmem_replay_cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "replay": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"replay-{uuid.uuid4()}"},
    }
    settings.SAML_JIT = {"REPLAY_STORE": "cache", "REPLAY_CACHE": "replay"}


def _cache_store_rejects_replays(browser, attacker, settings):
    assertion_id = new_id()
    login_once(browser, assertion_id)
    data = craft(attacker, assertion_id=assertion_id)
    with CaptureQueriesContext(connection) as queries:
        assert_replay_rejected(attacker, data)
    # The cache refused it before the login transaction: nothing was written and rolled back.
    assert not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "saml_jit_federatedidentity"')]
    # Another IdP's assertion with the same ID is still independent.
    third = Browser(Client())
    login_once(third, assertion_id, IDP_B)
    # A denied assertion is burned too.
    settings.SAML_JIT = {**settings.SAML_JIT, "ALLOWED_EMAIL_DOMAINS": ["example.com"]}
    denied_id = new_id()
    fourth, fifth = Browser(Client()), Browser(Client())
    assert post(fourth, craft(fourth, assertion_id=denied_id, name_id="subject-bob")).status_code == 403
    assert_replay_rejected(fifth, craft(fifth, assertion_id=denied_id, name_id="subject-bob"))


def test_cache_store_rejects_replays(browser, attacker, settings, locmem_replay_cache):
    _cache_store_rejects_replays(browser, attacker, settings)


@pytest.mark.skipif(
    not os.environ.get("CACHE_URL", "").startswith("redis://"), reason="needs CACHE_URL=redis://… (a shared Redis)"
)
def test_cache_store_on_redis_rejects_replays(browser, attacker, settings):
    pytest.importorskip("redis")
    settings.SAML_JIT = {"REPLAY_STORE": "cache", "REPLAY_CACHE": "default"}
    _cache_store_rejects_replays(browser, attacker, settings)


def test_cache_store_plan_time_denial_is_reported_as_the_denial(browser, settings, locmem_replay_cache):
    settings.SAML_JIT = {**settings.SAML_JIT, "CREATE_USERS": False}
    before = Snapshot.take(browser)
    response = post(browser, craft(browser, assertion_id=new_id()))
    assert_refused(browser, response, before, EventKind.DENIED, "creation_disabled", 403)
