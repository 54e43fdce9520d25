"""Group and privilege planning: asserted groups -> memberships, staff, superuser.

Pure: plain data in, a :class:`GroupPlan` out. The rules:

* Only *managed* memberships change. saml_jit records a grant for every
  membership it adds; on each login it adds newly asserted groups and removes
  only memberships it granted that are no longer asserted. A membership that
  existed before saml_jit asserted it (an administrator added it by hand) gets
  no grant and is never removed: the first to grant owns the membership.
* Staff and superuser status follow the same ownership rule, come only from
  ``STAFF_GROUPS`` / ``SUPERUSER_GROUPS``, and superuser only while
  ``ALLOW_SUPERUSER`` is on. Both are re-evaluated on every login.
* Privileged grants (``PRIVILEGED_GROUPS``, and staff/superuser from SAML)
  expire ``PRIVILEGE_TTL`` seconds after the last login that asserted them.
* With ``PRIVILEGES_REQUIRE_MFA``, privileges are granted or renewed only
  from an assertion whose authentication context shows MFA
  (``MFA_AUTHN_CONTEXTS``). A login without it is planned as if the
  privileges were not asserted: nothing privileged is granted, and this
  IdP's live privileged grants are taken back (privileges are withheld for
  the sign-in, not kept until they expire: a password alone must not reach
  them); the plan lists them in ``withheld``. A step-up login with MFA brings
  them back.
* A group overage (Entra ID's groups.link claim) leaves everything as it is:
  unknown groups are not "no groups".
* Several IdPs may hold a grant for the same membership; it goes only when
  the last of them lets go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .conf import IdPSettings
from .mapping import Denied, Profile
from .saml.authn import shows_mfa


@dataclass(frozen=True, eq=True)
class Flag:
    """A privilege flag as a grant target, never equal to a group name.

    (A Django group may well be called "staff"; it is still a group.)
    """

    kind: str
    field: str

    def __str__(self) -> str:
        return self.field

    # Sortable among group names, for stable output.
    def __lt__(self, other: object) -> bool:
        return str(self) < str(other)

    def __gt__(self, other: object) -> bool:
        return str(self) > str(other)


STAFF = Flag("staff", "is_staff")
SUPERUSER = Flag("superuser", "is_superuser")
FLAGS = {STAFF.kind: STAFF, SUPERUSER.kind: SUPERUSER}

#: A grant target: a Django group name, or a :class:`Flag`.
Target = str | Flag


@dataclass(frozen=True)
class GroupState:
    """The account's current groups and grants, as plain data."""

    #: Names of the Django groups the user belongs to now.
    member_of: frozenset[str] = frozenset()
    #: Targets (group names, ``STAFF``, ``SUPERUSER``) granted by this IdP.
    granted_here: frozenset[Target] = frozenset()
    #: Targets granted by other IdPs (still unexpired).
    granted_elsewhere: frozenset[Target] = frozenset()
    #: Targets other IdPs hold a grant on, expired or not: such a membership
    #: is SAML-managed, never hand-assigned.
    managed_elsewhere: frozenset[Target] = frozenset()
    is_staff: bool = False
    is_superuser: bool = False
    #: Django groups that exist (among those the assertion maps to).
    existing_groups: frozenset[str] | None = None
    #: Targets an access review revoked: never granted again while held.
    held: frozenset[Target] = frozenset()


@dataclass
class GroupPlan:
    """What a login does to groups and privileges."""

    add: set[str] = field(default_factory=set)
    remove: set[str] = field(default_factory=set)
    #: Targets whose grant (from this IdP) is created or refreshed -> expiry.
    grants: dict[Target, datetime | None] = field(default_factory=dict)
    #: Targets whose grant from this IdP is dropped.
    revoke: set[Target] = field(default_factory=set)
    #: Groups to create (CREATE_GROUPS).
    create: set[str] = field(default_factory=set)
    is_staff: bool | None = None
    is_superuser: bool | None = None
    notes: list[str] = field(default_factory=list)
    overage: bool = False
    #: Privileges asserted but withheld for want of MFA (``PRIVILEGES_REQUIRE_MFA``).
    withheld: set[Target] = field(default_factory=set)
    #: The authentication context the grants are made or renewed with (recorded on them).
    granted_by: str = ""

    @property
    def diff(self) -> dict[str, object]:
        """The part of an event's diff that this plan contributes."""
        changes: dict[str, object] = {}
        if self.withheld:
            changes["privileges_withheld"] = sorted(str(target) for target in self.withheld)
        if self.add or self.remove:
            changes["groups"] = {"added": sorted(self.add), "removed": sorted(self.remove)}
        if self.is_staff is not None:
            changes["is_staff"] = [not self.is_staff, self.is_staff]
        if self.is_superuser is not None:
            changes["is_superuser"] = [not self.is_superuser, self.is_superuser]
        return changes


def is_privileged(target: Target, settings: IdPSettings) -> bool:
    """Staff, superuser and ``PRIVILEGED_GROUPS``: what expires, and what a non-active account never gets."""
    return target in (STAFF, SUPERUSER) or target in settings.PRIVILEGED_GROUPS


def without_privileges(plan: GroupPlan, settings: IdPSettings) -> GroupPlan:
    """``plan`` minus the privileges it would grant (for an account that is not active)."""
    kept = GroupPlan(
        add={name for name in plan.add if not is_privileged(name, settings)},
        remove=set(plan.remove),
        grants={t: e for t, e in plan.grants.items() if not is_privileged(t, settings)},
        revoke=set(plan.revoke),
        create=set(plan.create),
        is_staff=plan.is_staff if plan.is_staff is False else None,
        is_superuser=plan.is_superuser if plan.is_superuser is False else None,
        notes=[*plan.notes],
        overage=plan.overage,
        withheld=set(plan.withheld),
        granted_by=plan.granted_by,
    )
    if kept.grants != plan.grants:
        kept.notes.append("privileges withheld until the account is active")
    return kept


def check_required_groups(profile: Profile, settings: IdPSettings) -> None:
    """Raise :class:`Denied` unless a required group is asserted."""
    if not settings.REQUIRED_GROUPS:
        return
    if profile.groups_overage:
        raise Denied(
            "groups_overage",
            "The IdP sent a group overage instead of the groups, so the required groups cannot be checked; "
            "configure the IdP to send only the groups assigned to this application.",
            "groups",
        )
    if not set(profile.groups) & set(settings.REQUIRED_GROUPS):
        raise Denied("missing_required_group", "None of the groups required to sign in was asserted.", "groups")


def django_groups(asserted: Iterable[str], settings: IdPSettings) -> set[str]:
    """Django group names for the asserted values (GROUP_MAP, then GROUP_PATTERN)."""
    pattern = re.compile(settings.GROUP_PATTERN) if settings.GROUP_PATTERN else None
    names: set[str] = set()
    for value in asserted:
        if value in settings.GROUP_MAP:
            names.update(settings.GROUP_MAP[value])
        elif pattern is not None and pattern.fullmatch(value):
            names.add(value)
    return names


def _expiry(target: Target, settings: IdPSettings, now: datetime) -> datetime | None:
    if not is_privileged(target, settings) or settings.PRIVILEGE_TTL is None:
        return None
    return now + timedelta(seconds=settings.PRIVILEGE_TTL)


def _plan_target(
    plan: GroupPlan, target: Target, wanted: bool, has_it: bool, state: GroupState, settings: IdPSettings, now: datetime
) -> bool | None:
    """Decide one membership or flag. Returns the new value if it changes."""
    if wanted:
        if not has_it:
            plan.grants[target] = _expiry(target, settings, now)
            return True
        if target in state.granted_here or target in state.granted_elsewhere or target in state.managed_elsewhere:
            # Managed already (by us or another IdP): (re)assert our grant.
            plan.grants[target] = _expiry(target, settings, now)
        return None  # present by hand: leave it unmanaged
    if target in state.granted_here:
        plan.revoke.add(target)
        if has_it and target not in state.granted_elsewhere:
            return False
    return None


def plan_groups(profile: Profile, settings: IdPSettings, state: GroupState, now: datetime) -> GroupPlan:
    """Plan group memberships and privileges for one login."""
    plan = GroupPlan()
    if not settings.manages_groups:
        return plan
    if profile.groups_overage:
        plan.overage = True
        plan.notes.append("the IdP sent a group overage; groups and privileges left unchanged")
        return plan
    plan.granted_by = granting_context(profile, settings)
    asserted = set(profile.groups)
    withhold = withholds_privileges(profile, settings)
    wanted = _wanted_groups(plan, django_groups(asserted, settings), state, settings, withhold)
    for name in sorted(wanted | {g for g in state.granted_here if isinstance(g, str)}):
        change = _plan_target(plan, name, name in wanted, name in state.member_of, state, settings, now)
        if change is True:
            plan.add.add(name)
        elif change is False:
            plan.remove.add(name)
    _plan_flags(plan, asserted, state, settings, now, withhold)
    if plan.withheld:
        plan.notes.append(MFA_NOTE)
    return plan


def _wanted_groups(
    plan: GroupPlan, wanted: set[str], state: GroupState, settings: IdPSettings, withhold: bool
) -> set[str]:
    """The mapped groups this login asserts, less those withheld, held by a review or missing."""
    if withhold:
        plan.withheld = {name for name in wanted if is_privileged(name, settings)}
        wanted -= plan.withheld
    held = wanted & {target for target in state.held if isinstance(target, str)}
    if held:
        wanted -= held
        plan.notes.append(f"{len(held)} asserted group(s) held by an access review")
    if state.existing_groups is not None:
        missing = wanted - state.existing_groups
        if missing and settings.CREATE_GROUPS:
            plan.create = missing
        elif missing:
            wanted -= missing
            plan.notes.append(f"{len(missing)} mapped group(s) do not exist and CREATE_GROUPS is off")
    return wanted


def _plan_flags(
    plan: GroupPlan, asserted: set[str], state: GroupState, settings: IdPSettings, now: datetime, withhold: bool
) -> None:
    wants_staff = bool(asserted & set(settings.STAFF_GROUPS)) and STAFF not in state.held
    if wants_staff and withhold:
        plan.withheld.add(STAFF)
        wants_staff = False
    plan.is_staff = _plan_target(plan, STAFF, wants_staff, state.is_staff, state, settings, now)
    wants_superuser = bool(asserted & set(settings.SUPERUSER_GROUPS)) and SUPERUSER not in state.held
    if wants_superuser and not settings.ALLOW_SUPERUSER:
        plan.notes.append("superuser asserted but ALLOW_SUPERUSER is off")
        wants_superuser = False
    if wants_superuser and withhold:
        plan.withheld.add(SUPERUSER)
        wants_superuser = False
    plan.is_superuser = _plan_target(plan, SUPERUSER, wants_superuser, state.is_superuser, state, settings, now)


#: The login event's note when privileges were withheld for want of MFA.
MFA_NOTE = "privileges withheld: the sign-in did not show multi-factor authentication (PRIVILEGES_REQUIRE_MFA)"


def granting_context(profile: Profile, settings: IdPSettings) -> str:
    """What a grant records as its authentication context: the AuthnContextClassRef, or the MFA method behind it.

    Entra ID says "MFA" in authnmethodsreferences while its class stays
    PasswordProtectedTransport: then the method is what granted.
    """
    context_class = profile.authn.context_class
    mfa = settings.MFA_AUTHN_CONTEXTS
    if not shows_mfa((context_class,), (), mfa):
        method = next((name for name in profile.authn_methods if shows_mfa((), (name,), mfa)), None)
        if method is not None:
            return method
    return context_class


def withholds_privileges(profile: Profile, settings: IdPSettings) -> bool:
    """``PRIVILEGES_REQUIRE_MFA`` is on and this sign-in's context does not show MFA."""
    return settings.PRIVILEGES_REQUIRE_MFA and not profile.has_mfa(settings.MFA_AUTHN_CONTEXTS)


def targets(grants: Iterable[tuple[str, str | None]]) -> frozenset[Target]:
    """``(kind, group name)`` pairs -> grant targets."""
    return frozenset(name if kind == "group" and name else FLAGS[kind] for kind, name in grants)


__all__ = [
    "FLAGS",
    "STAFF",
    "SUPERUSER",
    "Flag",
    "GroupPlan",
    "GroupState",
    "check_required_groups",
    "django_groups",
    "is_privileged",
    "plan_groups",
    "targets",
    "withholds_privileges",
    "without_privileges",
]
