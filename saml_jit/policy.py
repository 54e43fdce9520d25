"""The policy: who may come in, what they get, and what they read when refused.

:class:`Policy` is the extension point, in the manner of django-allauth's
adapters. Subclass it, override the hooks you need and point
``SAML_JIT["POLICY"]`` at your class::

    class MyPolicy(Policy):
        def authorize(self, request, profile, settings):
            super().authorize(request, profile, settings)
            if profile.fields.get("email", "").endswith("@contractors.example.org"):
                raise Denied("contractor", "Contractors sign in through the partner portal.")

The policy decides; signals only notify. Provisioning gathers the state a
login needs, calls :meth:`Policy.plan` once and applies the :class:`Plan` it
returns; the planners the policy calls (:mod:`saml_jit.planning`,
:mod:`saml_jit.groups`) are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.module_loading import import_string

from .conf import IdPSettings, app_settings
from .exceptions import Denied
from .groups import GroupPlan, GroupState, check_required_groups, plan_groups, without_privileges
from .mapping import Profile
from .messages import ERROR_MESSAGES, GENERIC
from .planning import (
    CREATE,
    LINK,
    UPDATE,
    USERNAME_ATTEMPTS,
    AccountPlan,
    AccountState,
    LoginState,
    Plan,
    choose_username,
    email_domain_allowed,
    held_for_approval,
    plan_login,
    username_base,
    username_candidates,
    with_fields,
)

__all__ = [
    "CREATE",
    "LINK",
    "UPDATE",
    "USERNAME_ATTEMPTS",
    "AccountPlan",
    "AccountState",
    "Denied",
    "LoginState",
    "Plan",
    "Policy",
    "email_domain_allowed",
    "get_policy",
    "plan_login",
    "username_base",
    "username_candidates",
]


class Policy:
    """Decides who may sign in, what their account looks like, and what a refused person reads.

    One instance serves every login; keep it stateless.
    """

    #: Reason code -> the message a refused person reads (translatable; see
    #: :mod:`saml_jit.messages`). Add your own codes, or reword ours.
    error_messages: Mapping[str, Promise | str] = ERROR_MESSAGES

    # ############################################
    # Hooks to override in subclasses
    # ############################################

    def authorize(self, request: HttpRequest | None, profile: Profile, settings: IdPSettings) -> None:
        """Raise :class:`Denied` to refuse the login. Runs first in :meth:`plan`, before any write.

        By default, enforces ``ALLOWED_EMAIL_DOMAINS`` and ``REQUIRED_GROUPS``.
        """
        if settings.ALLOWED_EMAIL_DOMAINS and not email_domain_allowed(profile.email, settings.ALLOWED_EMAIL_DOMAINS):
            raise Denied("email_domain_not_allowed", "The email domain is not allowed for this IdP.", "email")
        check_required_groups(profile, settings)

    def is_open_for_signup(self, request: HttpRequest | None, profile: Profile, settings: IdPSettings) -> bool:
        """May an unknown identity get a new account? ``CREATE_USERS`` by default."""
        return settings.CREATE_USERS

    def plan_groups(
        self, request: HttpRequest | None, profile: Profile, settings: IdPSettings, state: GroupState, now: datetime
    ) -> GroupPlan:
        """Plan memberships and privileges (see :mod:`saml_jit.groups`)."""
        return plan_groups(profile, settings, state, now)

    def username_candidates(
        self, profile: Profile, settings: IdPSettings, username_field: str, max_length: int | None
    ) -> list[str]:
        """Usernames to try for a new account, in order; the first free one is used.

        Called while the login's state is gathered (which of them are taken
        is looked up then), only when a new account may be created.
        """
        return list(username_candidates(username_base(profile, settings, username_field), max_length))

    def populate_fields(
        self,
        request: HttpRequest | None,
        profile: Profile,
        settings: IdPSettings,
        account: AccountState | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        """The user model fields a login writes (create, link or update); return them, changed as you like.

        ``fields`` are what the planner chose (for an existing ``account``,
        the synchronised fields). saml_jit writes exactly what this returns
        and records the diff against ``account``. No-op by default.
        """
        return fields

    def plan(self, request: HttpRequest | None, profile: Profile, settings: IdPSettings, state: LoginState) -> Plan:
        """Turn the profile and the gathered state into one :class:`Plan` (or a denial plan).

        Calls, in order: :meth:`authorize`, the account planner
        (:func:`~saml_jit.planning.plan_login`, with :meth:`is_open_for_signup`),
        :meth:`populate_fields`, :meth:`plan_groups`. A :class:`Denied`
        raised by any of them becomes ``Plan.deny(denial)``.
        """
        try:
            self.authorize(request, profile, settings)
            account = self.plan_account(request, profile, settings, state)
            groups = GroupPlan()
            if settings.manages_groups:
                groups = self.plan_groups(request, profile, settings, state.groups, state.now)
            if not account.is_active:
                groups = without_privileges(groups, settings)
        except Denied as denial:
            return Plan.deny(denial)
        notes = ("held for approval",) if held_for_approval(account) else ()
        return Plan(account, groups, (*notes, *profile.notes, *groups.notes))

    def plan_account(
        self, request: HttpRequest | None, profile: Profile, settings: IdPSettings, state: LoginState
    ) -> AccountPlan:
        """Create, link or update, with the fields to write and the new username."""
        account = plan_login(
            profile,
            settings,
            username_field=state.usernames.field,
            bound=state.bound,
            email_match=state.email_match,
            open_for_signup=state.account is not None or self.is_open_for_signup(request, profile, settings),
        )
        current = state.account.fields if state.account is not None and account.action != CREATE else {}
        fields = self.populate_fields(request, profile, settings, state.account, dict(account.changes))
        return choose_username(with_fields(account, current, fields), state.usernames)

    def error_message(self, code: str) -> str:
        """What a person refused with ``code`` reads (:attr:`error_messages`, else a generic message)."""
        return str(self.error_messages.get(code, GENERIC))


@lru_cache(maxsize=8)
def _load_policy(path: str) -> Policy:
    return import_string(path)()


def get_policy() -> Policy:
    """The configured policy instance (``SAML_JIT["POLICY"]``)."""
    return _load_policy(app_settings.POLICY)
