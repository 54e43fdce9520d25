"""Applying lifecycle transitions: one function, one event, whatever the source.

:func:`transition` (and :func:`transition_many`, its batch form for sweeps)
asks the rules (:mod:`saml_jit.lifecycle`) what a trigger does, and applies
it under locks — the account's identities first (the lock a SAML login takes),
then its lifecycle row — so a login and a sweep or an administrator's action
on the same person are serialised: one wins, the other sees its result.

Leaving ``active`` ends every session of the person at once, whatever the
session engine: the password is replaced by a fresh unusable one, which
changes the session auth hash, so each session (database, cache, signed
cookies) fails verification on its next request; sessions in the database
are also deleted outright. Deprovisioning also removes grants (SCIM: those of
its IdP; an administrator: all); suspension drops the privileged ones
(staff, superuser, privileged groups). Signals go out after commit
(:data:`saml_jit.signals.lifecycle_changed`,
:data:`saml_jit.signals.account_deprovisioned`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from importlib import import_module
from operator import or_
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.core.cache import caches
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import events
from .. import lifecycle as rules
from ..models import AccountLifecycle, EventKind, FederatedIdentity, Grant, GrantKind
from .grants import expire_grants

logger = logging.getLogger(__name__)

DATABASE_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)

#: Picks, from the owners (user pks, as strings) of some sessions, those whose sessions to keep.
Keep = Callable[[list[str]], Iterable[str]]
#: Picks, from the pks of locked accounts, those a transition still applies to.
Recheck = Callable[[list[Any]], Iterable[Any]]
_UNCHANGED = rules.Decision()

#: The event each target state writes (leaving ``pending_approval`` for ``active`` is an approval).
EVENT_KINDS = {
    rules.SUSPENDED: EventKind.SUSPENDED,
    rules.DEPROVISIONED: EventKind.DEACTIVATED,
    rules.ACTIVE: EventKind.REACTIVATED,
}


@dataclass(frozen=True)
class Context:
    """Who asks, for the event: the actor, the IdP (SCIM, SAML), the request."""

    actor: str = ""
    idp_entity_id: str = ""
    request: Any = None
    message: str = ""
    #: Per-IdP ``REACTIVATE_DORMANT`` for SAML logins.
    reactivate_dormant: bool = True
    #: The reason code to record instead of the rule's (e.g. ``scim_delete``).
    reason: str = ""
    #: Extra event fields (``subject``).
    fields: dict[str, Any] = field(default_factory=dict)
    #: Database session keys by user pk (a string), found beforehand by
    #: :func:`database_sessions` (a sweep reads the table once, not per batch).
    #: None: :func:`end_sessions` reads the table itself.
    sessions: Mapping[str, Sequence[str]] | None = None


def lifecycle_row(user: Any, *, lock: bool = False, created_by: str = "local") -> AccountLifecycle:
    """``user``'s lifecycle row, created from ``is_active`` for an account that has none yet."""
    rows = AccountLifecycle.objects.select_for_update() if lock else AccountLifecycle.objects
    row = rows.filter(user=user).first()
    if row is None:
        current = rules.initial(active=bool(getattr(user, "is_active", True)), source=rules.SYSTEM)
        row, _ = AccountLifecycle.objects.get_or_create(
            user=user, defaults={"state": current.state, "source": current.source, "created_by": created_by}
        )
    return row


def start(user: Any, *, active: bool, source: str, created_by: str, actor: str = "") -> AccountLifecycle:
    """The lifecycle row of a new account (inside its creating transaction)."""
    first = rules.initial(active=active, source=source)
    now = timezone.now()
    return AccountLifecycle.objects.create(
        user=user,
        state=first.state,
        since=now,
        source=first.source,
        reason_code=first.reason,
        actor=actor,
        created_by=created_by,
        last_scim_at=now if source == rules.SCIM else None,
    )


def transition(user: Any, trigger: str, context: Context | None = None) -> rules.Decision:
    """Apply ``trigger`` to ``user``: lock, decide, change state, write one event (if anything changes)."""
    return transition_many([user], trigger, context)[0]


def transition_many(
    users: Sequence[Any], trigger: str, context: Context | None = None, *, recheck: Recheck | None = None
) -> list[rules.Decision]:
    """:func:`transition` for a batch (the dormancy sweep): one transaction, one pass over sessions.

    ``recheck`` gets the pks of ``users`` once they are locked and returns
    those the trigger still applies to — the sweep re-reads the evidence, so
    a login that committed meanwhile wins; the others are left unchanged.
    """
    context = context or Context()
    with transaction.atomic():
        rows = lock([user.pk for user in users])
        kept = None if recheck is None else set(recheck([user.pk for user in users]))
        for user in users:
            rows[user.pk] = rows.get(user.pk) or lifecycle_row(user)
        decisions = [
            _decide(rows[user.pk], user, trigger, context) if kept is None or user.pk in kept else _UNCHANGED
            for user in users
        ]
        apply([(u, rows[u.pk], d) for u, d in zip(users, decisions, strict=True) if d.changes], context)
    return decisions


def _decide(row: AccountLifecycle, user: Any, trigger: str, context: Context) -> rules.Decision:
    current = rules.effective(row.rules, bool(getattr(user, "is_active", True)))
    return rules.decide(current, trigger, reactivate_dormant=context.reactivate_dormant)


def lock(user_ids: Iterable[Any]) -> dict[Any, AccountLifecycle]:
    """Lock the accounts' identities, then their lifecycle rows (in the transaction); return the rows by user id.

    The identities first: that is the lock a SAML login takes, so a login and
    a transition of one person never interleave. A caller that re-checks
    something before transitioning (the dormancy sweep) locks first, then reads.
    """
    user_ids = list(user_ids)
    list(FederatedIdentity.objects.select_for_update().filter(user_id__in=user_ids).values_list("pk", flat=True))
    return {row.user_id: row for row in AccountLifecycle.objects.select_for_update().filter(user_id__in=user_ids)}


def apply(changes: Sequence[tuple[Any, AccountLifecycle, rules.Decision]], context: Context) -> None:
    """Write decided transitions (inside the caller's transaction, rows locked): state, access, events.

    A batch costs a fixed number of queries (plus the expiry of the grants it
    takes away): one UPDATE per distinct new state, one per ``is_active``
    value, one read of grants, one ``bulk_create`` of events.
    """
    if not changes:
        return
    ended = end_sessions([user for user, _, decision in changes if decision.to != rules.ACTIVE], context.sessions)
    removed = _revoke(changes, context)
    old = [rules.effective(row.rules, bool(getattr(user, "is_active", True))).state for user, row, _ in changes]
    _write_states(changes, context)
    events.record_many(
        [
            _event(user, was, decision, context, ended.get(user.pk, 0), removed.get(user.pk, 0))
            for (user, _, decision), was in zip(changes, old, strict=True)
        ]
    )
    logger.info("saml_jit lifecycle %d account(s) -> %s", len(changes), changes[0][2].to)


def _write_states(changes: Sequence[tuple[Any, AccountLifecycle, rules.Decision]], context: Context) -> None:
    now, actor = timezone.now(), context.actor[:150]
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for _, row, decision in changes:
        row.state, row.since, row.reason_code = decision.to or row.state, now, context.reason or decision.reason
        row.source, row.actor = decision.source, actor
        groups.setdefault((row.state, row.reason_code, row.source), []).append(row.pk)
    for (state, reason, source), pks in groups.items():
        AccountLifecycle.objects.filter(pk__in=pks).update(
            state=state, since=now, reason_code=reason, source=source, actor=actor
        )
    _write_access([(user, decision.to == rules.ACTIVE) for user, _, decision in changes])


def _write_access(users: Sequence[tuple[Any, bool]]) -> None:
    """``is_active`` follows the state; leaving ``active`` also replaces the password.

    A fresh unusable password changes the session auth hash: every session
    (database, cache, signed cookie) stops verifying. One fresh value serves
    the whole batch — what ends a session is that the password differs from
    the one it was signed with — so the batch is one UPDATE, not one per user.
    """
    unusable = make_password(None)
    for active in (True, False):
        chosen = [user for user, becomes_active in users if becomes_active == active]
        if not chosen:
            continue
        values: dict[str, Any] = {"is_active": active} if active else {"is_active": False, "password": unusable}
        for user in chosen:
            for name, value in values.items():
                setattr(user, name, value)
        type(chosen[0])._base_manager.filter(pk__in=[user.pk for user in chosen]).update(**values)


def _revoke(changes: Sequence[tuple[Any, AccountLifecycle, rules.Decision]], context: Context) -> dict[Any, int]:
    """Grants the transitions take away, per user pk: deprovisioned all (SCIM: its IdP's), suspended the privileged."""
    scopes: dict[tuple[str, str], tuple[Q, list[Any]]] = {}
    for user, _, decision in changes:
        scope = _taken(decision, context)
        if scope is not None:
            scopes.setdefault((decision.to or "", decision.source), (scope, []))[1].append(user.pk)
    if not scopes:
        return {}
    query = reduce(or_, (scope & Q(user_id__in=pks) for scope, pks in scopes.values()))
    found: dict[Any, list[Any]] = {}
    for pk, user_id in Grant.objects.filter(query).values_list("pk", "user_id"):
        found.setdefault(user_id, []).append(pk)
    return {user_id: expire_grants(grant_ids=grant_ids) for user_id, grant_ids in found.items()}


def _taken(decision: rules.Decision, context: Context) -> Q | None:
    """The grants ``decision`` takes away (None: none)."""
    if decision.to == rules.DEPROVISIONED and decision.source == rules.SCIM:
        return Q(idp_entity_id=context.idp_entity_id)
    if decision.to == rules.SUSPENDED:
        return ~Q(kind=GrantKind.GROUP) | Q(expires_at__isnull=False)
    if decision.to == rules.DEPROVISIONED:
        return Q()
    return None


def _event(user: Any, old: str, decision: rules.Decision, context: Context, ended: int, removed: int) -> events.Pending:
    kind = (
        EventKind.APPROVED if old == rules.PENDING and decision.to == rules.ACTIVE else EVENT_KINDS[decision.to or old]
    )
    diff: dict[str, Any] = {
        "state": [old, decision.to],
        "is_active": [old == rules.ACTIVE, decision.to == rules.ACTIVE],
    }
    if ended or removed:
        diff.update(sessions_ended=ended, grants_removed=removed)
    return events.Pending(
        kind,
        user=user,
        source=decision.source,
        request=context.request,
        signal_kwargs={"state": decision.to, "previous": old, "reason": decision.reason, "source": decision.source},
        fields={
            "idp_entity_id": context.idp_entity_id,
            "actor": context.actor,
            "reason_code": context.reason or decision.reason,
            "diff": diff,
            "message": context.message or _message(old, decision, ended, removed),
            **context.fields,
        },
    )


def _message(old: str, decision: rules.Decision, ended: int, removed: int) -> str:
    text = f"{old} -> {decision.to} ({decision.reason}, by {decision.source})"
    if ended or removed:
        text += f"; {ended} database session(s) ended, {removed} grant(s) removed"
    return text


def end_sessions(users: Sequence[Any], known: Mapping[str, Sequence[str]] | None = None) -> dict[Any, int]:
    """Delete the database sessions of ``users``; return how many per user pk.

    Sessions are not indexed by user, so without ``known`` (from
    :func:`database_sessions`) this reads every unexpired session once for the
    whole batch. Other engines rely on the session auth hash having changed
    (:func:`_write_access`).
    """
    if not users or settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return {}
    wanted = {_session_owner(user): user.pk for user in users}
    if known is None:
        known = database_sessions(lambda owners: [owner for owner in owners if owner in wanted])
    ended: dict[Any, int] = {}
    doomed: list[str] = []
    for owner, pk in wanted.items():
        keys = known.get(owner, ())
        if keys:
            ended[pk] = len(keys)
            doomed.extend(keys)
    delete_sessions(doomed)
    return ended


def delete_sessions(keys: list[str]) -> None:
    """Delete database sessions by key: a query per 500 (and for ``cached_db`` one cache call), not two per session."""
    if not keys:
        return
    store = import_module(settings.SESSION_ENGINE).SessionStore
    prefix = getattr(store, "cache_key_prefix", None)
    if prefix is not None:  # cached_db: its cache entries go too
        caches[settings.SESSION_CACHE_ALIAS].delete_many([prefix + key for key in keys])
    sessions = store.get_model_class()._default_manager
    for start in range(0, len(keys), 500):  # SQLite before 3.32 takes at most 999 parameters
        sessions.filter(session_key__in=keys[start : start + 500]).delete()


def database_sessions(keep: Keep, chunk: int = 500) -> dict[str, list[str]]:
    """Unexpired database sessions by signed-in user pk (a string, as sessions store it): one pass over the table.

    ``keep`` gets the owners of each chunk of sessions and returns those whose
    sessions to keep (a sweep: the accounts it may suspend), so only theirs
    are held in memory. Empty for other session engines.
    """
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return {}
    from django.contrib.sessions.models import Session

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    rows = Session.objects.filter(expire_date__gt=timezone.now()).values_list("session_key", "session_data")
    found: dict[str, list[str]] = {}
    owned: list[tuple[str, str]] = []
    for key, data in rows.iterator(chunk_size=chunk):
        owner = store.decode(data).get(SESSION_KEY)
        if owner is not None:
            owned.append((str(owner), key))
        if len(owned) >= chunk:
            _keep(owned, keep, found)
            owned = []
    _keep(owned, keep, found)
    return found


def _keep(
    owned: list[tuple[str, str]], keep: Callable[[list[str]], Iterable[str]], found: dict[str, list[str]]
) -> None:
    kept = {str(owner) for owner in keep(sorted({owner for owner, _ in owned}))} if owned else set()
    for owner, key in owned:
        if owner in kept:
            found.setdefault(owner, []).append(key)


def _session_owner(user: Any) -> str:
    return str(user._meta.pk.value_to_string(user))


def end_database_sessions(user: Any) -> int:
    """Delete one user's database sessions; return how many."""
    return end_sessions([user]).get(user.pk, 0)


def touch_scim(user: Any) -> None:
    """The IdP touched the account over SCIM just now (evidence it still knows the person)."""
    AccountLifecycle.objects.filter(user=user).update(last_scim_at=timezone.now())
