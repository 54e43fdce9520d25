"""Replay protection: an assertion is accepted once, ever (until it expires).

Real logins through ``/saml2/login/`` and the real ACS. A replay here is the
same assertion ID from the same IdP answering a *different* request (the
outstanding-request check alone cannot catch it), or the same bytes of an
IdP-initiated response posted again.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from saml_jit import replay
from saml_jit.models import ConsumedAssertion, EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.policy import Policy
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
    assert ConsumedAssertion.objects.count() == 1

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
    assert ConsumedAssertion.objects.count() == 1  # a denial uses the assertion up too
    # Even once creation is allowed, the refused assertion cannot be used.
    settings.SAML_JIT = {}
    assert_replay_rejected(attacker, craft(attacker, assertion_id=assertion_id))


def test_same_assertion_id_from_another_idp_is_independent(browser, attacker):
    assertion_id = new_id()
    login_once(browser, assertion_id, IDP_A)
    login_once(attacker, assertion_id, IDP_B)
    assert User.objects.count() == 2
    assert sorted(ConsumedAssertion.objects.values_list("idp_entity_id", "assertion_id")) == sorted(
        [(IDP_A.entity_id, assertion_id), (IDP_B.entity_id, assertion_id)]
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


def test_consumed_row_written_with_the_login(browser):
    assertion_id = new_id()
    before = timezone.now()
    login_once(browser, assertion_id, lifetime=600)
    row = ConsumedAssertion.objects.get()
    assert (row.idp_entity_id, row.assertion_id) == (IDP_A.entity_id, assertion_id)
    # Kept until the bearer NotOnOrAfter plus the clock skew, not forever.
    expected = before.replace(microsecond=0) + timedelta(seconds=600 + 180)
    assert abs((row.expires_at - expected).total_seconds()) <= 30


def test_denial_consumes_the_assertion(browser, settings):
    settings.SAML_JIT = {"ALLOWED_EMAIL_DOMAINS": ["example.com"]}
    response = post(browser, craft(browser, assertion_id=new_id()))
    assert response.status_code == 403
    assert ConsumedAssertion.objects.count() == 1
    assert ProvisioningEvent.objects.get().reason_code == "email_domain_not_allowed"


class ExplodingPolicy(Policy):
    """Fails inside the login transaction, after the replay record was written."""

    def populate_user(self, request, user, profile, plan):
        raise RuntimeError("the login transaction fails")


def test_consumed_row_rolls_back_with_a_failed_login(browser, attacker, settings):
    settings.SAML_JIT = {"POLICY": f"{__name__}.ExplodingPolicy"}
    assertion_id = new_id()
    with pytest.raises(RuntimeError, match="login transaction fails"):
        post(browser, craft(browser, assertion_id=assertion_id))
    # The replay record went with the rest of the transaction…
    assert not ConsumedAssertion.objects.exists()
    assert not User.objects.exists() and not ProvisioningEvent.objects.exists()
    # …so the assertion was not burned by a login that never happened.
    settings.SAML_JIT = {}
    login_once(attacker, assertion_id)
    assert ConsumedAssertion.objects.count() == 1


def test_prune_deletes_expired_rows_only():
    now = timezone.now()
    for name, offset in (("old-1", -3600), ("old-2", -1), ("fresh", 60), ("later", 86400)):
        ConsumedAssertion.objects.create(
            idp_entity_id=IDP_A.entity_id, assertion_id=name, expires_at=now + timedelta(seconds=offset)
        )
    assert replay.prune(now=now) == 2
    assert sorted(ConsumedAssertion.objects.values_list("assertion_id", flat=True)) == ["fresh", "later"]
    assert replay.prune(now=now) == 0
    assert replay.prune(now=now + timedelta(days=2)) == 2
    assert not ConsumedAssertion.objects.exists()


def test_prune_command_deletes_expired_rows_only():
    now = timezone.now()
    ConsumedAssertion.objects.create(
        idp_entity_id=IDP_A.entity_id, assertion_id="old", expires_at=now - timedelta(days=1)
    )
    ConsumedAssertion.objects.create(
        idp_entity_id=IDP_A.entity_id, assertion_id="new", expires_at=now + timedelta(hours=1)
    )
    out = StringIO()
    call_command("saml_jit_prune", stdout=out)
    assert list(ConsumedAssertion.objects.values_list("assertion_id", flat=True)) == ["new"]
    assert "1 expired replay record(s) deleted" in out.getvalue()


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
    assert not ConsumedAssertion.objects.exists()  # the cache holds it, not the database
    assert_replay_rejected(attacker, craft(attacker, assertion_id=assertion_id))
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
