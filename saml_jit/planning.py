"""The pure login planner: a validated profile and the gathered state -> one plan.

Plain data in, plain data out: no ORM, no request. Provisioning gathers the
state (:class:`LoginState`) first, the policy turns it into one
:class:`Plan` — the account change with its field diff, the group and
privilege changes with their expiries, or the denial — and provisioning
applies that plan as it is, without asking anyone again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from . import lifecycle as rules
from .conf import SYNC_ALWAYS, USERNAME_FROM_ATTRIBUTE, USERNAME_FROM_SUBJECT, IdPSettings
from .exceptions import Denied
from .groups import GroupPlan, GroupState
from .mapping import Profile, check_username

CREATE = "create"
LINK = "link"
UPDATE = "update"

#: How many numbered usernames (alice2, alice3…) are tried before giving up.
USERNAME_ATTEMPTS = 50


@dataclass(frozen=True)
class AccountState:
    """The current state of a local account, as plain data for the planner."""

    pk: Any
    fields: Mapping[str, Any]
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    #: Entity IDs of the IdPs this account already has an identity with.
    idps: frozenset[str] = frozenset()
    #: Its lifecycle state; None: follow ``is_active`` (an account outside saml_jit's lifecycle).
    lifecycle: rules.Lifecycle | None = None

    @property
    def privileged(self) -> bool:
        return self.is_staff or self.is_superuser


@dataclass(frozen=True)
class Usernames:
    """What choosing a new username needs: the candidates and which are taken."""

    #: The user model's username field, and whether it needs choosing (it is not the email).
    field: str = "username"
    needed: bool = True
    max_length: int | None = None
    candidates: tuple[str, ...] = ()
    taken: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LoginState:
    """Everything a login plans against, gathered before planning."""

    #: The account already bound to (IdP, subject), if any.
    bound: AccountState | None
    #: The local account with the profile's email, looked up only when nothing is bound.
    email_match: AccountState | None = None
    #: Groups and grants of the account the login lands on (a new one: none).
    groups: GroupState = field(default_factory=GroupState)
    usernames: Usernames = field(default_factory=Usernames)
    #: When the state was read: what grant expiries count from.
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def account(self) -> AccountState | None:
        """The existing account the login lands on (bound, else matched by email)."""
        return self.bound if self.bound is not None else self.email_match


@dataclass(frozen=True)
class AccountPlan:
    """What a login does to the account. ``diff`` maps field -> [old, new]."""

    action: str
    user_pk: Any = None
    changes: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, list[Any]] = field(default_factory=dict)
    is_active: bool = True
    #: A lifecycle change the login makes (a dormant account returning), if any.
    lifecycle: rules.Decision | None = None


@dataclass(frozen=True)
class Plan:
    """Everything one login does, or the denial. Provisioning applies it as it is."""

    account: AccountPlan | None = None
    groups: GroupPlan = field(default_factory=GroupPlan)
    notes: tuple[str, ...] = ()
    denial: Denied | None = None

    @classmethod
    def deny(cls, denial: Denied) -> Plan:
        return cls(denial=denial)

    @property
    def action(self) -> str:
        return self.account.action if self.account is not None else "deny"

    @property
    def diff(self) -> dict[str, Any]:
        """The event's diff: account fields, then groups and privileges."""
        account = self.account.diff if self.account is not None else {}
        return {**account, **self.groups.diff}


def _field_diff(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {name: [current.get(name), value] for name, value in wanted.items() if current.get(name) != value}


def plan_update(profile: Profile, settings: IdPSettings, account: AccountState, username_field: str) -> AccountPlan:
    """Fields to change on an existing account: only ``always`` fields that differ."""
    wanted = {
        name: value for name, value in profile.fields.items() if settings.sync_mode(name, username_field) == SYNC_ALWAYS
    }
    diff = _field_diff(account.fields, wanted)
    return AccountPlan(UPDATE, account.pk, {name: new for name, (_, new) in diff.items()}, diff, account.is_active)


def plan_login(
    profile: Profile,
    settings: IdPSettings,
    *,
    username_field: str,
    bound: AccountState | None,
    email_match: AccountState | None = None,
    open_for_signup: bool = True,
) -> AccountPlan:
    """Decide create, link or update; raise :class:`Denied` to refuse.

    ``bound`` is the account already bound to (IdP, subject); ``email_match``
    the existing account with the profile's email, looked up only when
    nothing is bound.
    """
    if bound is not None:
        change = _lifecycle_on_login(bound, settings)
        update = plan_update(profile, settings, bound, username_field)
        if change is None:
            return update
        return AccountPlan(UPDATE, bound.pk, update.changes, update.diff, True, change)
    if email_match is not None:
        return _plan_link(profile, settings, email_match, username_field)
    if not open_for_signup:
        raise Denied("creation_disabled", "Creating accounts on first login is turned off for this IdP.")
    changes = dict(profile.fields)
    diff = {name: [None, value] for name, value in changes.items()}
    return AccountPlan(CREATE, None, changes, diff, settings.NEW_USERS_ACTIVE)


def _lifecycle_on_login(account: AccountState, settings: IdPSettings) -> rules.Decision | None:
    """Deny a login to a non-active account, or reactivate a dormant one (``REACTIVATE_DORMANT``)."""
    if account.lifecycle is None:
        if not account.is_active:
            raise Denied("inactive", "The account is inactive (awaiting approval or deactivated).")
        return None
    decision = rules.decide(account.lifecycle, rules.SAML_LOGIN, reactivate_dormant=settings.REACTIVATE_DORMANT)
    if decision.denial:
        state = account.lifecycle
        raise Denied(decision.denial, f"The account is {state.state} (by {state.source}: {state.reason or '-'}).")
    return decision if decision.changes else None


def _plan_link(profile: Profile, settings: IdPSettings, account: AccountState, username_field: str) -> AccountPlan:
    if not settings.LINK_BY_EMAIL:
        raise Denied(
            "email_in_use",
            "A local account already uses this email and linking by email is off for this IdP.",
        )
    if settings.entity_id in account.idps:
        raise Denied(
            "email_bound_to_other_subject", "The account with this email is bound to another subject of this IdP."
        )
    if account.privileged:
        # An IdP must not be able to take over a staff or superuser account
        # by asserting its email address.
        raise Denied("link_refused_privileged", "Refusing to link a staff or superuser account by email.")
    if not account.is_active:
        raise Denied("inactive", "The account with this email is inactive.")
    update = plan_update(profile, settings, account, username_field)
    return AccountPlan(LINK, account.pk, update.changes, update.diff, True)


def with_fields(plan: AccountPlan, current: Mapping[str, Any], fields: Mapping[str, Any]) -> AccountPlan:
    """``plan`` writing ``fields`` instead of its own changes (after the policy's ``populate_fields``)."""
    if plan.action == CREATE:
        return replace(plan, changes=dict(fields), diff={name: [None, value] for name, value in fields.items()})
    diff = _field_diff(current, fields)
    return replace(plan, changes={name: new for name, (_, new) in diff.items()}, diff=diff)


def choose_username(plan: AccountPlan, usernames: Usernames) -> AccountPlan:
    """A new account's plan with its username: the first candidate nobody has."""
    if plan.action != CREATE or not usernames.needed:
        return plan
    if not usernames.candidates:
        raise Denied("username_unavailable", "No username could be generated for this account.")
    check_username(usernames.candidates[0], usernames.field, usernames.max_length)
    free = next((name for name in usernames.candidates if name not in usernames.taken), None)
    if free is None:
        raise Denied("username_unavailable", "Every generated username for this account is taken.")
    return replace(
        plan, changes={**plan.changes, usernames.field: free}, diff={**plan.diff, usernames.field: [None, free]}
    )


_USERNAME_UNSAFE = re.compile(r"[^a-z0-9.@+_-]")


def username_base(profile: Profile, settings: IdPSettings, username_field: str) -> str:
    """The username a new account would like to have, before de-duplication."""
    if settings.USERNAME_SOURCE == USERNAME_FROM_SUBJECT:
        return profile.subject
    if settings.USERNAME_SOURCE == USERNAME_FROM_ATTRIBUTE and profile.fields.get(username_field):
        return profile.fields[username_field]
    local = profile.email.rpartition("@")[0].lower()
    local = _USERNAME_UNSAFE.sub("", local)
    return local or profile.subject


def username_candidates(base: str, max_length: int | None, attempts: int = USERNAME_ATTEMPTS) -> Iterator[str]:
    """``alice``, ``alice2``, ``alice3``… never longer than ``max_length``."""
    for number in range(1, attempts + 1):
        candidate = base if number == 1 else f"{base}{number}"
        if max_length is None or len(candidate) <= max_length:
            yield candidate


def email_domain_allowed(email: str, allowed: tuple[str, ...]) -> bool:
    """``example.org`` matches exactly; ``*.example.org`` matches its subdomains."""
    domain = email.rpartition("@")[2].lower()
    if not domain:
        return False
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return True
        elif domain == pattern:
            return True
    return False


def held_for_approval(plan: AccountPlan) -> bool:
    return plan.action == CREATE and not plan.is_active
