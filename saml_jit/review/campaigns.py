"""Access review campaigns: open, decide, apply, close (NIST SP 800-53 AC-2(j)).

* :func:`open_campaign` snapshots the access in scope into one item each
  (a group membership, staff, superuser of one account).
* :func:`decide` records a reviewer's *keep* or *revoke* with a comment —
  never on their own access, only with ``saml_jit.review_access``, only while
  the campaign is open — as one ``reviewed`` event naming the reviewer and
  the campaign. A revoke is applied at once: the membership or the flag is
  removed with its SAML grants, and an :class:`~saml_jit.models.AccessHold`
  keeps the next login from granting it again while the IdP still asserts
  it (the login's event notes the held grant). Lifting the hold
  (:func:`lift_hold`) hands the decision back to the IdP.
* :func:`close` freezes the campaign: its items can no longer change, and
  its evidence exports as CSV or JSON lines (:mod:`.exports`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from .. import events
from ..models import (
    AccessHold,
    Campaign,
    CampaignItem,
    CampaignState,
    Decision,
    EventKind,
    EventSource,
    Grant,
    GrantKind,
)
from . import access, rules

logger = logging.getLogger(__name__)


class ReviewRefused(Exception):
    """A decision that may not be made; ``code`` says why (``own_access``, ``not_a_reviewer``, ``campaign_closed``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Progress:
    total: int
    decided: int
    kept: int
    revoked: int

    @property
    def percent(self) -> int:
        return round(100 * self.decided / self.total) if self.total else 100


def open_campaign(
    name: str,
    *,
    actor: str,
    idp_entity_id: str = "",
    groups: Iterable[Group] = (),
    privileged_only: bool = False,
    due_at: datetime | None = None,
) -> Campaign:
    """Open a campaign and snapshot the access in its scope into items."""
    groups = list(groups)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name, idp_entity_id=idp_entity_id, privileged_only=privileged_only, opened_by=actor, due_at=due_at
        )
        campaign.groups.set(groups)
        scope = rules.Scope(idp_entity_id, frozenset(g.name for g in groups), privileged_only)
        created = _add_items(campaign, scope)
    logger.info("saml_jit review campaign %s opened with %d item(s)", campaign.pk, created)
    return campaign


def _add_items(campaign: Campaign, scope: rules.Scope) -> int:
    groups = {group.name: group for group in Group.objects.all()}
    users = access.accounts(idp=scope.idp_entity_id)
    batch: list[CampaignItem] = []
    created = 0
    for account in access.snapshot(users):
        for held in account.access:
            if rules.in_scope(rules.Access(held.kind, held.group, held.privileged), scope):
                batch.append(_item(campaign, account, held, groups.get(held.group)))
        if len(batch) >= access.BATCH:
            created += len(CampaignItem.objects.bulk_create(batch))
            batch = []
    return created + len(CampaignItem.objects.bulk_create(batch))


def _item(campaign: Campaign, account: access.AccountAccess, held: access.Held, group: Group | None) -> CampaignItem:
    return CampaignItem(
        campaign=campaign,
        user_id=account.user_id,
        username=account.username,
        kind=held.kind,
        group=group,
        group_name=held.group,
        source=held.source,
        idp_entity_id=held.idp_entity_id,
        since=held.granted_at,
    )


def progress(campaign: Campaign) -> Progress:
    counts = dict.fromkeys(Decision.values, 0)
    for decision, count in _decision_counts(campaign):
        counts[decision] = count
    total = sum(counts.values())
    return Progress(total, total - counts[Decision.PENDING], counts[Decision.KEEP], counts[Decision.REVOKE])


def _decision_counts(campaign: Campaign) -> Any:
    from django.db.models import Count

    return campaign.items.order_by().values_list("decision").annotate(n=Count("pk"))


def decide(item: CampaignItem, decision: str, *, reviewer: Any, comment: str = "", request: Any = None) -> None:
    """Record ``reviewer``'s ``keep``/``revoke`` on ``item`` (and apply a revoke); raise :class:`ReviewRefused`."""
    if decision not in (Decision.KEEP, Decision.REVOKE):
        raise ValueError(f"not a decision: {decision!r}")
    with transaction.atomic():
        # Lock the item and its campaign (against a concurrent close); user and group are outer joins,
        # which PostgreSQL cannot lock.
        items = CampaignItem.objects.select_for_update(of=("self", "campaign"))
        item = items.select_related("campaign", "user", "group").get(pk=item.pk)
        why = rules.may_decide(
            reviewer.pk,
            item.user_id,
            is_open=item.campaign.is_open,
            is_reviewer=reviewer.has_perm("saml_jit.review_access"),
        )
        if why:
            raise ReviewRefused(why)
        now = timezone.now()
        item.decision, item.comment, item.decided_by, item.decided_at = decision, comment, reviewer.get_username(), now
        diff = _revoke(item, reviewer.get_username()) if decision == Decision.REVOKE and item.user else {}
        item.applied_at = now if diff else None
        item.save(update_fields=["decision", "comment", "decided_by", "decided_at", "applied_at"])
        _record(item, decision, diff, reviewer.get_username(), request)


def _revoke(item: CampaignItem, reviewer: str) -> dict[str, Any]:
    """Take the access away with its grants (every IdP's), and hold it against the next logins."""
    user: Any = item.user
    grants = Grant.objects.filter(user=user, kind=item.kind)
    AccessHold.objects.get_or_create(
        user=user,
        kind=item.kind,
        group=item.group,
        idp_entity_id="",
        defaults={"campaign": item.campaign, "created_by": reviewer},
    )
    if item.kind == GrantKind.GROUP:
        if item.group is None:
            return {}
        grants.filter(group=item.group).delete()
        removed = item.group.user_set.filter(pk=user.pk).exists()
        user.groups.remove(item.group)
        return {"groups": {"added": [], "removed": [item.group_name] if removed else []}}
    field = "is_staff" if item.kind == GrantKind.STAFF else "is_superuser"
    grants.delete()
    was = bool(getattr(user, field, False))
    setattr(user, field, False)
    user.save(update_fields=[field])
    return {field: [was, False]} if was else {}


def _record(item: CampaignItem, decision: str, diff: dict[str, Any], reviewer: str, request: Any) -> None:
    what = item.group_name if item.kind == GrantKind.GROUP else item.kind
    events.record(
        EventKind.REVIEWED,
        request=request,
        user=item.user,
        source=EventSource.ADMIN,
        idp_entity_id=item.idp_entity_id,
        actor=reviewer,
        reason_code=decision,
        diff=diff,
        message=f"{what}: {decision} in campaign #{item.campaign_id} {item.campaign.name!r}",
        **_username(item),
    )


def _username(item: CampaignItem) -> dict[str, Any]:
    # The snapshot, when the account is gone (events.record takes it from the user otherwise).
    return {"username": item.username} if item.user is None else {}


def close(campaign: Campaign, *, actor: str) -> Campaign:
    """Freeze ``campaign``: no decision can change afterwards."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not campaign.is_open:
            raise ReviewRefused("campaign_closed")
        campaign.state, campaign.closed_by, campaign.closed_at = CampaignState.CLOSED, actor, timezone.now()
        campaign.save(update_fields=["state", "closed_by", "closed_at"])
    logger.info("saml_jit review campaign %s closed", campaign.pk)
    return campaign


def lift_hold(hold: AccessHold, *, actor: str, request: Any = None) -> None:
    """Let the IdP decide again: the next login that asserts the access grants it."""
    with transaction.atomic():
        what = hold.group.name if hold.group is not None else hold.kind
        events.record(
            EventKind.REVIEWED,
            request=request,
            user=hold.user,
            source=EventSource.ADMIN,
            actor=actor,
            reason_code="hold_lifted",
            message=f"{what}: the review's hold was lifted",
        )
        hold.delete()
