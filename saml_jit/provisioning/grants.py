"""Managed memberships and privileges in the database: load, apply, expire.

The decisions are made in :mod:`saml_jit.groups`; this module reads the state
they need and writes what they decided.

Expiry is enforced two ways, so a privilege stops counting on time even when
its holder never signs in again:

* ``manage.py saml_jit_expire_grants`` (run it from cron, e.g. every five
  minutes) removes every expired grant;
* :class:`saml_jit.middleware.GrantExpiryMiddleware` checks the signed-in
  user on each request. It keeps the user's next expiry time in the session,
  so most requests cost no query at all, and a due check costs one indexed
  query (plus the clean-up when something did expire).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import events
from ..conf import IdPSettings
from ..groups import FLAGS, Flag, GroupPlan, GroupState, Target, django_groups
from ..mapping import Profile
from ..models import AccessHold, EventKind, EventSource, Grant, GrantKind

logger = logging.getLogger(__name__)


def _group(grant: Grant) -> Group:
    """The group of a ``kind=group`` grant: never None (the check constraint saml_jit_grant_group_iff_kind)."""
    return cast(Group, grant.group)


def _target(grant: Grant) -> Target:
    return _group(grant).name if grant.kind == GrantKind.GROUP else FLAGS[grant.kind]


def _live(grant: Grant, now: datetime) -> bool:
    return grant.expires_at is None or grant.expires_at > now


@dataclass
class LoadedState:
    """The group state for the planner, plus the rows needed to apply a plan."""

    state: GroupState
    groups: dict[str, Group]
    grants_here: dict[Target, Grant]


def load_state(user: Any, profile: Profile, settings: IdPSettings, now: datetime) -> LoadedState:
    """Read what the group planner needs for ``user`` (unsaved for a new account)."""
    wanted = django_groups(profile.groups, settings)
    groups = {group.name: group for group in Group.objects.filter(name__in=wanted)} if wanted else {}
    grants_here: dict[Target, Grant] = {}
    elsewhere: set[Target] = set()
    managed_elsewhere: set[Target] = set()
    member_of: frozenset[str] = frozenset()
    if user.pk is not None:
        member_of = frozenset(user.groups.values_list("name", flat=True))
        for grant in Grant.objects.filter(user=user).select_related("group"):
            if grant.idp_entity_id == settings.entity_id:
                grants_here[_target(grant)] = grant
                continue
            managed_elsewhere.add(_target(grant))
            if _live(grant, now):
                elsewhere.add(_target(grant))
    state = GroupState(
        member_of=member_of,
        granted_here=frozenset(grants_here),
        granted_elsewhere=frozenset(elsewhere),
        managed_elsewhere=frozenset(managed_elsewhere),
        is_staff=bool(getattr(user, "is_staff", False)),
        is_superuser=bool(getattr(user, "is_superuser", False)),
        existing_groups=frozenset(groups),
        held=_held(user, settings) if user.pk is not None else frozenset(),
    )
    return LoadedState(state, groups, grants_here)


def _held(user: Any, settings: IdPSettings) -> frozenset[Target]:
    """What an access review revoked from ``user`` (for this IdP, or every IdP)."""
    holds = AccessHold.objects.filter(user=user, idp_entity_id__in=["", settings.entity_id]).select_related("group")
    return frozenset(FLAGS[hold.kind] if hold.group is None else hold.group.name for hold in holds)


def flag_values(plan: GroupPlan) -> dict[str, bool]:
    """The staff/superuser fields ``plan`` changes, with their new values."""
    values = {"is_staff": plan.is_staff, "is_superuser": plan.is_superuser}
    return {field: value for field, value in values.items() if value is not None}


def set_flags(user: Any, plan: GroupPlan) -> list[str]:
    """Apply staff/superuser changes to the (unsaved) user; return changed fields."""
    changed = flag_values(plan)
    for field, value in changed.items():
        setattr(user, field, value)
    return list(changed)


def apply_plan(user: Any, profile: Profile, plan: GroupPlan, loaded: LoadedState, now: datetime) -> None:
    """Write memberships and grants for a saved user. Call inside the login's transaction."""
    groups = dict(loaded.groups)
    for name in plan.create:
        groups[name] = Group.objects.get_or_create(name=name)[0]
    if plan.add:
        user.groups.add(*(groups[name] for name in plan.add))
    if plan.remove:
        user.groups.remove(*(loaded.grants_here[name].group for name in plan.remove))
    if plan.revoke:
        Grant.objects.filter(pk__in=[loaded.grants_here[target].pk for target in plan.revoke]).delete()
    _write_grants(user, profile, plan, loaded, groups, now)


def _write_grants(
    user: Any, profile: Profile, plan: GroupPlan, loaded: LoadedState, groups: dict[str, Group], now: datetime
) -> None:
    new: list[Grant] = []
    refresh: dict[datetime | None, list[Any]] = {}
    for target, expires_at in plan.grants.items():
        existing = loaded.grants_here.get(target)
        if existing is not None:
            refresh.setdefault(expires_at, []).append(existing.pk)
            continue
        new.append(
            Grant(
                user=user,
                idp_entity_id=profile.idp_entity_id,
                kind=target.kind if isinstance(target, Flag) else GrantKind.GROUP,
                group=None if isinstance(target, Flag) else groups[target],
                granted_at=now,
                last_asserted_at=now,
                assertion_id=profile.assertion_id,
                expires_at=expires_at,
                authn_context=plan.granted_by[:255],
            )
        )
    if new:
        Grant.objects.bulk_create(new)
    for expires_at, pks in refresh.items():
        Grant.objects.filter(pk__in=pks).update(
            last_asserted_at=now,
            assertion_id=profile.assertion_id,
            expires_at=expires_at,
            authn_context=plan.granted_by[:255],
        )


# ----------------------------------------------------------------------------
# Expiry


def next_expiry(user_id: Any) -> datetime | None:
    """The earliest expiry among the user's grants (one indexed query)."""
    return (
        Grant.objects.filter(user_id=user_id, expires_at__isnull=False)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )


def expire_grants(*, user_id: Any = None, now: datetime | None = None, grant_ids: Any = None) -> int:
    """Remove expired grants (of one user, or of everyone) and what they gave.

    With ``grant_ids``, those grants are expired now whatever their expiry
    (the admin's "expire now"). A membership or flag is taken away only when
    no other live grant (from another IdP) still holds it. Returns the number
    of grants removed.
    """
    now = now or timezone.now()
    forced = frozenset(grant_ids) if grant_ids is not None else None
    query = Q(expires_at__lte=now) if forced is None else Q(pk__in=forced)
    if user_id is not None:
        query &= Q(user_id=user_id)
    expired = 0
    for uid in list(Grant.objects.filter(query).order_by().values_list("user_id", flat=True).distinct()):
        with transaction.atomic():
            expired += _expire_for_user(uid, now, forced)
    return expired


def _is_due(grant: Grant, now: datetime, forced: frozenset[Any] | None) -> bool:
    if forced is not None:
        return grant.pk in forced
    return grant.expires_at is not None and grant.expires_at <= now


def _expire_for_user(user_id: Any, now: datetime, forced: frozenset[Any] | None) -> int:
    # of=("self",): PostgreSQL cannot lock the nullable side of the outer join.
    grants = list(Grant.objects.select_for_update(of=("self",)).filter(user_id=user_id).select_related("group", "user"))
    due = [grant for grant in grants if _is_due(grant, now, forced)]
    if not due:
        return 0  # a concurrent login re-asserted them meanwhile
    user = due[0].user
    due_ids = {grant.pk for grant in due}
    still_held = {_target(g) for g in grants if g.pk not in due_ids and _live(g, now)}
    removed_groups = [_group(g) for g in due if g.kind == GrantKind.GROUP and _group(g).name not in still_held]
    flags = sorted({FLAGS[g.kind].field for g in due if g.kind in FLAGS and FLAGS[g.kind] not in still_held})
    if removed_groups:
        user.groups.remove(*removed_groups)
    for field in flags:
        setattr(user, field, False)
    if flags:
        user.save(update_fields=flags)
    Grant.objects.filter(pk__in=due_ids).delete()
    for grant in due:
        events.record(
            EventKind.EXPIRED,
            user=user,
            source=EventSource.SYSTEM,
            idp_entity_id=grant.idp_entity_id,
            assertion_id=grant.assertion_id,
            diff=_expiry_diff(grant, removed_groups, flags),
            message=f"{_target(grant)} expired (granted {grant.granted_at:%Y-%m-%d %H:%M:%S} UTC)",
        )
    logger.info("saml_jit expired %d grant(s) of user id=%s", len(due), user_id)
    return len(due)


def _expiry_diff(grant: Grant, removed_groups: list[Group], flags: list[str]) -> dict[str, Any]:
    if grant.kind == GrantKind.GROUP:
        removed = [_group(grant).name] if grant.group in removed_groups else []
        return {"groups": {"added": [], "removed": removed}}
    field = FLAGS[grant.kind].field
    return {field: [True, False]} if field in flags else {}
