"""The consumed-assertion store: each assertion is accepted once, everywhere.

Two stores, chosen by ``SAML_JIT["REPLAY_STORE"]``:

* ``"database"`` (default): a row per assertion in
  :class:`~saml_jit.models.ConsumedAssertion`, written in the same transaction
  as the login it admits. The unique constraint on (IdP, assertion ID) makes
  the second of two concurrent uses fail, on any number of app servers
  sharing the database.
* ``"cache"``: ``cache.add()`` on the Django cache named by
  ``REPLAY_CACHE`` (atomic on Redis and Memcached). Not transactional: the
  ID is burned even if the login then fails. Never use a per-process cache
  (local memory) with several processes.

Entries are kept until the assertion's ``NotOnOrAfter`` plus the allowed
clock skew (an assertion is worthless after that anyway) and pruned by
``saml_jit_prune``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.core.cache import caches
from django.utils import timezone

from .conf import app_settings
from .models import ConsumedAssertion

#: Kept this long when an assertion carries no NotOnOrAfter (saml_jit's ACS
#: refuses such assertions; other callers may not).
DEFAULT_RETENTION = timedelta(days=1)


class Replayed(Exception):
    """The assertion was used before."""


def _keep_until(not_on_or_after: datetime | None, now: datetime) -> datetime:
    skew = timedelta(seconds=app_settings.CLOCK_SKEW)
    if not_on_or_after is None:
        return now + DEFAULT_RETENTION
    return max(not_on_or_after, now) + skew


def uses_cache() -> bool:
    return app_settings.REPLAY_STORE == "cache"


def consume_in_cache(idp_entity_id: str, assertion_id: str, not_on_or_after: datetime | None) -> None:
    """Cache store: record the assertion as used once, before the login, or raise :class:`Replayed`.

    The cache is not transactional, so this runs exactly once per response,
    outside the login's transaction and its retries.
    """
    if assertion_id:
        now = timezone.now()
        _consume_in_cache(idp_entity_id, assertion_id, _keep_until(not_on_or_after, now), now)


def consume(idp_entity_id: str, assertion_id: str, not_on_or_after: datetime | None) -> None:
    """Database store: record the assertion as used, inside the login's transaction.

    A replay then surfaces as an ``IntegrityError`` from that transaction (no
    savepoint of its own, to keep the login's query count down); tell it from
    other conflicts with :func:`was_consumed` once the transaction has rolled
    back. A no-op with the cache store (see :func:`consume_in_cache`).
    """
    if not assertion_id or uses_cache():
        return
    now = timezone.now()
    expires_at = _keep_until(not_on_or_after, now)
    ConsumedAssertion.objects.create(
        idp_entity_id=idp_entity_id, assertion_id=assertion_id, consumed_at=now, expires_at=expires_at
    )


def was_consumed(idp_entity_id: str, assertion_id: str) -> bool:
    """Whether the database store already holds this assertion (committed by someone)."""
    if not assertion_id or uses_cache():
        return False
    return ConsumedAssertion.objects.filter(idp_entity_id=idp_entity_id, assertion_id=assertion_id).exists()


def _consume_in_cache(idp_entity_id: str, assertion_id: str, expires_at: datetime, now: datetime) -> None:
    digest = hashlib.sha256(f"{idp_entity_id}\n{assertion_id}".encode()).hexdigest()
    timeout = max(1, int((expires_at - now).total_seconds()))
    if not caches[app_settings.REPLAY_CACHE].add(f"saml_jit:assertion:{digest}", 1, timeout):
        raise Replayed(assertion_id)


def prune(now: datetime | None = None) -> int:
    """Delete database entries past their retention; return how many."""
    deleted, _ = ConsumedAssertion.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
