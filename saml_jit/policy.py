"""The policy: who may come in and what they get.

:class:`Policy` is the extension point, in the manner of django-allauth's
adapters. Subclass it, override the hooks you need and point
``SAML_JIT["POLICY"]`` at your class::

    class MyPolicy(Policy):
        def authorize(self, request, profile, settings):
            super().authorize(request, profile, settings)
            if profile.fields.get("email", "").endswith("@contractors.example.org"):
                raise Denied("contractor", "Contractors sign in through the partner portal.")

The policy decides; signals only notify. The planner (:func:`plan_login`) is
pure: it takes the validated profile and the current state of the accounts
involved as plain data and returns a :class:`Plan` or raises
:class:`~saml_jit.mapping.Denied`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string

from .conf import (
    SYNC_ALWAYS,
    USERNAME_FROM_ATTRIBUTE,
    USERNAME_FROM_SUBJECT,
    IdPSettings,
    app_settings,
)
from .groups import GroupPlan, GroupState, check_required_groups, plan_groups
from .mapping import Denied, Profile

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

    @property
    def privileged(self) -> bool:
        return self.is_staff or self.is_superuser


@dataclass(frozen=True)
class Plan:
    """What a login will do. ``diff`` maps field -> [old, new]."""

    action: str
    user_pk: Any = None
    changes: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, list[Any]] = field(default_factory=dict)
    is_active: bool = True


def _field_diff(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {name: [current.get(name), value] for name, value in wanted.items() if current.get(name) != value}


def plan_update(profile: Profile, settings: IdPSettings, account: AccountState, username_field: str) -> Plan:
    """Fields to change on an existing account: only ``always`` fields that differ."""
    wanted = {
        name: value for name, value in profile.fields.items() if settings.sync_mode(name, username_field) == SYNC_ALWAYS
    }
    diff = _field_diff(account.fields, wanted)
    return Plan(UPDATE, account.pk, {name: new for name, (_, new) in diff.items()}, diff, account.is_active)


def plan_login(
    profile: Profile,
    settings: IdPSettings,
    *,
    username_field: str,
    bound: AccountState | None,
    email_match: AccountState | None = None,
    open_for_signup: bool = True,
) -> Plan:
    """Decide what a login does.

    ``bound`` is the account already bound to (IdP, subject); ``email_match``
    the existing account with the profile's email, looked up only when
    nothing is bound.
    """
    if bound is not None:
        if not bound.is_active:
            raise Denied("inactive", "The account is inactive (awaiting approval or deactivated).")
        return plan_update(profile, settings, bound, username_field)
    if email_match is not None:
        return _plan_link(profile, settings, email_match, username_field)
    if not open_for_signup:
        raise Denied("creation_disabled", "Creating accounts on first login is turned off for this IdP.")
    changes = dict(profile.fields)
    diff = {name: [None, value] for name, value in changes.items()}
    return Plan(CREATE, None, changes, diff, settings.NEW_USERS_ACTIVE)


def _plan_link(profile: Profile, settings: IdPSettings, account: AccountState, username_field: str) -> Plan:
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
    return Plan(LINK, account.pk, update.changes, update.diff, True)


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


class Policy:
    """Decides who may sign in and what their account looks like.

    One instance serves every login; keep it stateless.
    """

    # ############################################
    # Hooks to override in subclasses
    # ############################################

    def authorize(self, request: HttpRequest | None, profile: Profile, settings: IdPSettings) -> None:
        """Raise :class:`Denied` to refuse the login. Runs before any database write.

        By default, enforces ``ALLOWED_EMAIL_DOMAINS`` and ``REQUIRED_GROUPS``.
        """
        if settings.ALLOWED_EMAIL_DOMAINS and not email_domain_allowed(profile.email, settings.ALLOWED_EMAIL_DOMAINS):
            raise Denied("email_domain_not_allowed", "The email domain is not allowed for this IdP.", "email")
        check_required_groups(profile, settings)

    def is_open_for_signup(self, request: HttpRequest | None, profile: Profile, settings: IdPSettings) -> bool:
        """May an unknown identity get a new account? ``CREATE_USERS`` by default."""
        return settings.CREATE_USERS

    def plan(
        self,
        request: HttpRequest | None,
        profile: Profile,
        settings: IdPSettings,
        *,
        username_field: str,
        bound: AccountState | None,
        email_match: AccountState | None,
    ) -> Plan:
        """Turn the profile and current state into a plan (see :func:`plan_login`)."""
        return plan_login(
            profile,
            settings,
            username_field=username_field,
            bound=bound,
            email_match=email_match,
            open_for_signup=self.is_open_for_signup(request, profile, settings),
        )

    def plan_groups(
        self, request: HttpRequest | None, profile: Profile, settings: IdPSettings, state: GroupState, now: datetime
    ) -> GroupPlan:
        """Plan memberships and privileges (see :mod:`saml_jit.groups`)."""
        return plan_groups(profile, settings, state, now)

    def username_candidates(
        self, profile: Profile, settings: IdPSettings, username_field: str, max_length: int | None
    ) -> list[str]:
        """Usernames to try for a new account, in order; the first free one is used."""
        return list(username_candidates(username_base(profile, settings, username_field), max_length))

    def populate_user(self, request: HttpRequest | None, user: Any, profile: Profile, plan: Plan) -> None:
        """Last look at a user about to be saved (new or updated). No-op by default."""


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


@lru_cache(maxsize=8)
def _load_policy(path: str) -> Policy:
    return import_string(path)()


def get_policy() -> Policy:
    """The configured policy instance (``SAML_JIT["POLICY"]``)."""
    return _load_policy(app_settings.POLICY)
