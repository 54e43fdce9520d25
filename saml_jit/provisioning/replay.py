"""Replay protection: each assertion is accepted once, everywhere.

Two stores, chosen by ``SAML_JIT["REPLAY_STORE"]``:

* ``"database"`` (default): the login's own event row is the record. Every
  assertion saml_jit admits or refuses by policy leaves exactly one event of
  a consuming kind (``created``, ``linked``, ``updated``, ``login``,
  ``denied``) carrying its ID, written in the login's transaction; a partial
  unique constraint on (IdP, assertion ID) over those kinds
  (``saml_jit_event_assertion_once``) makes the second use fail with an
  ``IntegrityError`` on any number of app servers sharing the database, and
  rolls back everything that second use changed. No extra row, no extra
  query: the event is written anyway.
* ``"cache"``: ``cache.add()`` on the Django cache named by
  ``REPLAY_CACHE`` (atomic on Redis and Memcached), kept until the
  assertion's ``NotOnOrAfter`` plus the clock skew. Not transactional: the
  ID is burned even if the login then fails. Never use a per-process cache
  (local memory) with several processes. The event constraint still holds.
  A cache that cannot be reached refuses the login
  (``replay_store_unavailable``, 503): an assertion is never admitted
  unchecked.

How long the record must live: the ACS refuses a response or an assertion
whose ``IssueInstant`` is older than ``MAX_RESPONSE_AGE`` plus
``CLOCK_SKEW`` (or more than ``CLOCK_SKEW`` in the future), so an event
older than that plus twice the skew guards nothing any more.
``saml_jit_prune --events-days`` never deletes younger events
(:func:`guard_window`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.core.cache import caches
from django.utils import timezone

from ..conf import app_settings
from ..exceptions import Rejected, Replayed
from ..models import ASSERTION_CONSUMING_KINDS, ProvisioningEvent

#: Kept this long in the cache when an assertion carries no NotOnOrAfter
#: (saml_jit's ACS refuses such assertions; other callers may not).
DEFAULT_RETENTION = timedelta(days=1)


def guard_window() -> timedelta:
    """How long after a login its event still protects the assertion from a replay."""
    return timedelta(seconds=app_settings.MAX_RESPONSE_AGE + 2 * app_settings.CLOCK_SKEW)


def uses_cache() -> bool:
    return app_settings.REPLAY_STORE == "cache"


def _cache_key(idp_entity_id: str, assertion_id: str) -> str:
    digest = hashlib.sha256(f"{idp_entity_id}\n{assertion_id}".encode()).hexdigest()
    return f"saml_jit:assertion:{digest}"


def consume_in_cache(idp_entity_id: str, assertion_id: str, not_on_or_after: datetime | None) -> None:
    """Cache store: record the assertion as used once, before the login, or raise :class:`Replayed`.

    The cache is not transactional, so this runs exactly once per response,
    outside the login's transaction and its retries.
    """
    if not assertion_id:
        return
    now = timezone.now()
    skew = timedelta(seconds=app_settings.CLOCK_SKEW)
    expires_at = now + DEFAULT_RETENTION if not_on_or_after is None else max(not_on_or_after, now) + skew
    timeout = max(1, int((expires_at - now).total_seconds()))
    try:
        added = caches[app_settings.REPLAY_CACHE].add(_cache_key(idp_entity_id, assertion_id), 1, timeout)
    except Exception as exc:  # any cache client's failure: fail closed, never admit an unchecked assertion
        raise Rejected(
            "replay_store_unavailable", f"The replay cache could not be reached ({type(exc).__name__}).", status=503
        ) from exc
    if not added:
        raise Replayed(assertion_id)


def was_consumed(idp_entity_id: str, assertion_id: str) -> bool:
    """Whether a committed event already used this assertion up.

    Asked only after a login transaction failed with an ``IntegrityError``,
    to tell a replay (this event's unique constraint) from a race on the
    account (a username or identity constraint).
    """
    if not assertion_id:
        return False
    return ProvisioningEvent.objects.filter(
        idp_entity_id=idp_entity_id, assertion_id=assertion_id, kind__in=ASSERTION_CONSUMING_KINDS
    ).exists()


def already_used(idp_entity_id: str, assertion_id: str) -> bool:
    """Whether a login with this assertion would be a replay, asked without using it up (the dry run)."""
    if not assertion_id:
        return False
    if uses_cache():
        return caches[app_settings.REPLAY_CACHE].get(_cache_key(idp_entity_id, assertion_id)) is not None
    return was_consumed(idp_entity_id, assertion_id)
