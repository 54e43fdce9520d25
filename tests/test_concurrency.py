"""Simultaneous logins on PostgreSQL: provisioning and replay protection are race-safe.

Each thread is a separate browser (its own ``django.test.Client``, session
and database connection) that starts a real login, gets its response minted,
then waits at a barrier so that all the ACS POSTs hit the database at once.
Skipped unless ``DATABASE_URL`` points at PostgreSQL (SQLite serialises
writers, so it proves nothing here).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client

from saml_jit.models import ASSERTION_CONSUMING_KINDS, EventKind, FederatedIdentity, ProvisioningEvent
from tests.conftest import Browser
from tests.test_security import attrs, craft

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

User = get_user_model()
SUBJECT = "subject-carol-0003"
THREADS = 16


@dataclass
class Result:
    status: int = 0
    error: BaseException | None = None
    session_user: str | None = None
    reason: bytes = b""


def run_concurrently(assertion_ids: list[str], **kwargs) -> list[Result]:
    """One browser per assertion ID: real login request, minted response, barrier, POST."""
    barrier = threading.Barrier(len(assertion_ids))
    results = [Result() for _ in assertion_ids]

    def worker(index: int, assertion_id: str) -> None:
        result = results[index]
        try:
            browser = Browser(Client())
            data = craft(browser, assertion_id=assertion_id, **kwargs)
            barrier.wait(timeout=120)
            response = browser.client.post("/saml2/acs/", dict(data))
            result.status = response.status_code
            result.session_user = browser.client.session.get("_auth_user_id")
            if response.status_code != 302:
                start = response.content.find(b"<code>")
                result.reason = response.content[start : start + 40]
        except BaseException as exc:
            result.error = exc
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(assertion_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a login thread hung"
    return results


def carol(email: bool = True, **kwargs):
    attributes = attrs(uid="carol", email="carol@example.org" if email else None, given_name="Carol")
    return {"name_id": SUBJECT, "attributes": attributes, **kwargs}


def assert_one_user_from_simultaneous_first_logins(results: list[Result]) -> None:
    errors = [(r.status, r.error, r.reason) for r in results if r.error is not None or r.status != 302]
    assert errors == [], errors
    user = User.objects.get()
    identity = FederatedIdentity.objects.get()
    assert (identity.user_id, identity.subject) == (user.pk, SUBJECT)
    kinds = Counter(ProvisioningEvent.objects.values_list("kind", flat=True))
    assert kinds[EventKind.CREATED] == 1, kinds
    assert kinds[EventKind.LOGIN] + kinds[EventKind.UPDATED] == THREADS - 1, kinds
    assert sum(kinds.values()) == THREADS, kinds
    assert {r.session_user for r in results} == {str(user.pk)}


def test_simultaneous_first_logins_create_one_user():
    # The identity carries no email, so the create/retry path is all that races.
    ids = [f"_race-{uuid.uuid4().hex}" for _ in range(THREADS)]
    results = run_concurrently(ids, **carol(email=False))
    assert_one_user_from_simultaneous_first_logins(results)
    # Each assertion used up exactly once: one consuming event per assertion ID.
    assert sorted(
        ProvisioningEvent.objects.filter(kind__in=ASSERTION_CONSUMING_KINDS).values_list("assertion_id", flat=True)
    ) == sorted(ids)


def test_simultaneous_first_logins_with_email_create_one_user():
    ids = [f"_race-{uuid.uuid4().hex}" for _ in range(THREADS)]
    results = run_concurrently(ids, **carol())
    assert_one_user_from_simultaneous_first_logins(results)


def test_simultaneous_replays_of_one_assertion_accepted_once():
    # The same assertion ID answering 8 different requests at the same moment.
    assertion_id = f"_race-{uuid.uuid4().hex}"
    results = run_concurrently([assertion_id] * 8, **carol(email=False))
    errors = [(r.status, r.error) for r in results if r.error is not None or r.status >= 500]
    assert errors == [], errors
    assert sorted(r.status for r in results) == [302] + [400] * 7, [(r.status, r.reason) for r in results]
    assert all(r.reason.startswith(b"<code>replay</code>") for r in results if r.status != 302)
    assert User.objects.count() == 1
    kinds = Counter(ProvisioningEvent.objects.values_list("kind", "reason_code"))
    assert kinds == {(EventKind.CREATED, ""): 1, (EventKind.REJECTED, "replay"): 7}, kinds
    assert sum(r.session_user is not None for r in results) == 1


# --------------------------------------------------------------------------
# Deterministic interleavings: the loser pauses right after its identity lookup


def interleave(loser_kwargs: dict, winner_kwargs: dict) -> tuple[Result, Result]:
    """The loser looks the identity up (finds none) and pauses; the winner signs in
    and commits; then the loser goes on. Returns (winner, loser)."""
    winner_browser, loser_browser = Browser(Client()), Browser(Client())
    winner_data = dict(craft(winner_browser, assertion_id=f"_race-{uuid.uuid4().hex}", **winner_kwargs))
    loser_data = dict(craft(loser_browser, assertion_id=f"_race-{uuid.uuid4().hex}", **loser_kwargs))
    looked_up, resume = threading.Event(), threading.Event()
    winner, loser = Result(), Result()

    def pause_after_identity_lookup(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not looked_up.is_set() and "saml_jit_federatedidentity" in sql and "FOR UPDATE" in sql:
            looked_up.set()
            resume.wait(timeout=60)
        return result

    def run(result: Result, browser: Browser, data: dict, before=None, after=None) -> None:
        try:
            if before is not None:
                assert before.wait(timeout=60), "the other login never got there"
            if after is None:
                with connection.execute_wrapper(pause_after_identity_lookup):
                    response = browser.client.post("/saml2/acs/", data)
            else:
                response = browser.client.post("/saml2/acs/", data)
            result.status = response.status_code
            result.session_user = browser.client.session.get("_auth_user_id")
            start = response.content.find(b"<code>")
            result.reason = response.content[start : start + 40] if start >= 0 else b""
        except BaseException as exc:
            result.error = exc
        finally:
            if after is not None:
                after.set()
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(loser, loser_browser, loser_data)),
        threading.Thread(target=run, args=(winner, winner_browser, winner_data, looked_up, resume)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert winner.error is None and winner.status == 302, winner
    return winner, loser


def test_interleaved_first_logins_without_email():
    # The loser's INSERT of the user collides; the retry finds the winner's identity.
    winner, loser = interleave(carol(email=False), carol(email=False))
    assert (loser.error, loser.status, loser.session_user) == (None, 302, winner.session_user), loser
    assert User.objects.count() == FederatedIdentity.objects.count() == 1


def test_interleaved_first_logins_with_email():
    winner, loser = interleave(carol(), carol())
    assert (loser.error, loser.status, loser.reason) == (None, 302, b""), loser
    assert loser.session_user == winner.session_user


def test_interleaved_first_logins_with_cache_store(settings):
    settings.CACHES = {
        **settings.CACHES,
        "replay": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"race-{uuid.uuid4()}"},
    }
    settings.SAML_JIT = {"REPLAY_STORE": "cache", "REPLAY_CACHE": "replay"}
    _, loser = interleave(carol(email=False), carol(email=False))
    assert (loser.error, loser.status, loser.reason) == (None, 302, b""), loser
