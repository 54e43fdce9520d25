"""The dormancy sweep: suspend accounts their IdP has not vouched for in ``DORMANT_AFTER`` days.

An account's *evidence* is the latest sign from an IdP that it still knows
the person: the last assertion of each of its identities (from any IdP; an
identity never asserted — SCIM pre-provisioned — counts from when it was
bound) and its last SCIM touch. Never Django's ``last_login``, which a
password login also moves. An account is *dormant* for an IdP when

* it is ``active`` and holds an identity from that IdP;
* none of its identities was asserted (or bound, if never asserted) since
  the cut-off, and SCIM has not touched it since;
* its lifecycle state is older than the cut-off too (an account created or
  reactivated since is not dormant, whatever its evidence).

So a JIT account never seen again after its first login is dormant
``DORMANT_AFTER`` days after that login. Finding them costs three queries
per page of :data:`BATCH` accounts: the next page of lifecycle rows by user
id (keyset pagination; no list of all users in memory), then the rule's two
halves anchored on those ids (:func:`dormant_among`). Each page is suspended in its own transaction through
:func:`saml_jit.provisioning.lifecycle.transition_many` with the ``dormant``
trigger — sessions ended, privileged grants dropped, one ``suspended`` event
per account with source ``dormancy`` — after re-checking the evidence under
the locks a SAML login takes: a login (or SCIM touch) that committed
meanwhile wins, and its account is skipped.

Live database sessions are read once per IdP pass, before the first page
(decoding every session once, keeping only those of dormant accounts),
instead of once per page. A session a dormant account opens after that read
(a password login during the sweep) is not deleted, but stops verifying all
the same: suspension replaces the password the session was signed with.

``--days`` (``days=``) overrides ``DORMANT_AFTER`` for one run. For IdPs
where dormancy is off it applies only when that IdP is named (``idp=``):
"off" is a per-IdP decision that a global one-off run does not overrule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .. import lifecycle as rules
from ..conf import app_settings
from ..models import AccountLifecycle, FederatedIdentity
from . import lifecycle

logger = logging.getLogger(__name__)

#: Accounts per page (and per transaction).
BATCH = 500


@dataclass
class SweepResult:
    """What a sweep did for one IdP."""

    idp_entity_id: str
    days: int
    cutoff: datetime
    dry_run: bool = False
    #: Accounts the query found dormant.
    considered: int = 0
    suspended: int = 0
    #: Found dormant, but fresh evidence (or another state) had committed by the time they were locked.
    skipped_fresh: int = 0
    #: Dry run: (user id, username) of the accounts that would be suspended.
    accounts: list[tuple[Any, str]] = field(default_factory=list)


def fresh_evidence(cutoff: datetime) -> Q:
    """On :class:`FederatedIdentity`: asserted since ``cutoff`` (bound since, if never asserted)."""
    return Q(last_asserted_at__gte=cutoff) | Q(last_asserted_at__isnull=True, bound_at__gte=cutoff)


def no_scim_touch_since(cutoff: datetime) -> Q:
    """On :class:`AccountLifecycle`: SCIM has not touched the account since ``cutoff``."""
    return Q(last_scim_at__isnull=True) | Q(last_scim_at__lt=cutoff)


def no_evidence_since(cutoff: datetime) -> Q:
    """On :class:`AccountLifecycle`: no assertion (or binding), from any IdP, and no SCIM touch since ``cutoff``."""
    fresh = FederatedIdentity.objects.filter(fresh_evidence(cutoff), user_id=OuterRef("user_id"))
    return ~Exists(fresh) & no_scim_touch_since(cutoff)


def bound_to(entity_id: str | None = None) -> Exists:
    """On :class:`AccountLifecycle`: the account holds an identity (from ``entity_id``, or from any IdP)."""
    identities = FederatedIdentity.objects.filter(user_id=OuterRef("user_id"))
    return Exists(identities.filter(idp_entity_id=entity_id) if entity_id else identities)


def stale_lifecycles(cutoff: datetime) -> QuerySet[AccountLifecycle]:
    """Active accounts in that state since before ``cutoff``, not touched by SCIM since: what a sweep pages through."""
    return AccountLifecycle.objects.filter(no_scim_touch_since(cutoff), state=rules.ACTIVE, since__lt=cutoff)


def dormant(entity_id: str, cutoff: datetime) -> QuerySet[AccountLifecycle]:
    """The lifecycle rows of the accounts dormant for ``entity_id`` at ``cutoff`` (the rule in the module doc).

    One query, for counting and reports; the sweep itself pages through all
    lifecycle rows and narrows each page with :func:`dormant_among`.
    """
    return stale_lifecycles(cutoff).filter(no_evidence_since(cutoff), bound_to(entity_id))


def dormant_among(entity_id: str, cutoff: datetime, ids: list[Any]) -> list[Any]:
    """Of the accounts ``ids``, those dormant for ``entity_id`` at ``cutoff`` (the same rule as :func:`dormant`).

    Both queries are anchored on the ids (index look-ups), so their plans stay
    cheap whatever the planner's statistics say — one query with correlated
    anti-joins over the whole identity table, per page, does not (on
    PostgreSQL, hundreds of ms a page at 100,000 accounts).
    """
    ids = list(stale_lifecycles(cutoff).filter(user_id__in=ids).values_list("user_id", flat=True))
    if not ids:
        return []
    evidence = (
        FederatedIdentity.objects.filter(user_id__in=ids)
        .order_by()
        .values("user_id")
        .annotate(here=Count("pk", filter=Q(idp_entity_id=entity_id)), fresh=Count("pk", filter=fresh_evidence(cutoff)))
        .filter(here__gt=0, fresh=0)
    )
    return sorted(row["user_id"] for row in evidence)


def known_idps() -> list[str]:
    """IdPs with bound identities or settings of their own."""
    bound = FederatedIdentity.objects.order_by().values_list("idp_entity_id", flat=True).distinct()
    return sorted(set(bound) | set(app_settings.IDPS))


def plan(idp: str | None = None, days: int | None = None) -> list[tuple[str, int]]:
    """(IdP, days) pairs a sweep covers: ``idp`` alone, or every IdP where dormancy is on."""
    if days is not None and days < 1:
        raise ValueError("days must be at least 1")
    pairs = []
    for entity_id in [idp] if idp else known_idps():
        configured = app_settings.for_idp(entity_id).DORMANT_AFTER
        if configured is None and not idp:
            continue  # off for this IdP: only a run naming it may sweep it
        after = days or configured
        if after is not None:
            pairs.append((entity_id, after))
    return pairs


def sweep(
    idp: str | None = None,
    *,
    days: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = BATCH,
) -> list[SweepResult]:
    """Suspend the dormant accounts of ``idp`` (default: every IdP with ``DORMANT_AFTER``); one result per IdP."""
    now = now or timezone.now()
    return [
        sweep_idp(entity_id, after, now - timedelta(days=after), dry_run=dry_run, batch=batch)
        for entity_id, after in plan(idp, days)
    ]


def sweep_idp(entity_id: str, days: int, cutoff: datetime, *, dry_run: bool, batch: int = BATCH) -> SweepResult:
    """One IdP's pass: page through its dormant accounts, suspending each page in its own transaction."""
    result = SweepResult(entity_id, days, cutoff, dry_run)
    context = lifecycle.Context(
        idp_entity_id=entity_id,
        message=_message(entity_id, days, cutoff),
        sessions=None if dry_run else lifecycle.database_sessions(_dormant_owners(entity_id, cutoff)),
    )
    step: Callable[[list[Any]], int] = (
        (lambda ids: _list(ids, result)) if dry_run else (lambda ids: _suspend(ids, entity_id, cutoff, context))
    )
    # Pages over every lifecycle row in user id order (a range of the unique
    # index, whatever the statistics), each narrowed by dormant_among.
    for page in pages(AccountLifecycle.objects.all(), batch):
        ids = dormant_among(entity_id, cutoff, page)
        if not ids:
            continue
        suspended = step(ids)
        result.considered += len(ids)
        result.suspended += suspended
        result.skipped_fresh += 0 if dry_run else len(ids) - suspended
        logger.info(
            "saml_jit dormancy idp=%s batch=%d suspended=%d skipped_fresh=%d dry_run=%s",
            entity_id, len(ids), suspended, 0 if dry_run else len(ids) - suspended, dry_run,
        )  # fmt: skip
    logger.info(
        "saml_jit dormancy idp=%s days=%d considered=%d suspended=%d skipped_fresh=%d dry_run=%s",
        entity_id, days, result.considered, result.suspended, result.skipped_fresh, dry_run,
    )  # fmt: skip
    return result


def pages(rows: QuerySet[AccountLifecycle], size: int) -> Iterator[list[Any]]:
    """User ids of ``rows`` in ascending pages of ``size``; each page is a fresh query after the last id."""
    last = None
    while True:
        page = rows if last is None else rows.filter(user_id__gt=last)
        ids = list(page.order_by("user_id").values_list("user_id", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _dormant_owners(entity_id: str, cutoff: datetime) -> lifecycle.Keep:
    """For the session pre-scan: which session owners (user pks, as strings) are dormant accounts."""
    pk = get_user_model()._meta.pk
    assert pk is not None

    def keep(owners: list[str]) -> list[str]:
        ids = []
        for owner in owners:
            try:
                ids.append(pk.to_python(owner))
            except ValidationError:
                continue  # not one of ours (another user model's session)
        return [str(user_id) for user_id in dormant_among(entity_id, cutoff, ids)]

    return keep


def _list(ids: list[Any], result: SweepResult) -> int:
    user_model = get_user_model()
    found = user_model._default_manager.filter(pk__in=ids).order_by("pk")
    result.accounts.extend((user.pk, user.get_username()) for user in found)
    return 0


def _suspend(ids: list[Any], entity_id: str, cutoff: datetime, context: lifecycle.Context) -> int:
    """Suspend the accounts of ``ids`` still dormant once locked; return how many were suspended."""
    users = list(get_user_model()._default_manager.filter(pk__in=ids).order_by("pk"))
    # transition_many takes the locks a SAML login takes (identities), then the
    # lifecycle rows, and only then re-checks: whatever committed before is seen.
    decisions = lifecycle.transition_many(
        users, rules.DORMANT, context, recheck=lambda pks: dormant_among(entity_id, cutoff, pks)
    )
    return sum(decision.changes for decision in decisions)


def _message(entity_id: str, days: int, cutoff: datetime) -> str:
    return f"dormant: no evidence from any IdP since {cutoff:%Y-%m-%d %H:%M} UTC ({days} days, sweep for {entity_id})"
