"""Gathering: everything a login plans against, read before the policy is asked.

One pass of reads — the identity (locked), the account with the same email
when nothing is bound, the account's groups and grants, and which candidate
usernames are taken — gives the planner its plain-data
:class:`~saml_jit.planning.LoginState`, and keeps the rows that applying the
plan needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone

from ..conf import IdPSettings
from ..exceptions import Denied
from ..groups import GroupState
from ..mapping import Profile
from ..models import FederatedIdentity, lifecycle_of, users_with_email
from ..planning import AccountState, LoginState, Usernames
from ..policy import Policy
from . import grants


@dataclass(frozen=True)
class Context:
    """What a login runs with: the IdP's settings, the policy, the user model, the request."""

    settings: IdPSettings
    policy: Policy
    user_model: Any
    request: Any = None

    @property
    def username_field(self) -> str:
        return self.user_model.USERNAME_FIELD


@dataclass(frozen=True)
class Gathered:
    """The planner's state, plus the rows needed to apply its plan."""

    state: LoginState
    identity: FederatedIdentity | None
    #: The account the login lands on: the bound one, else the email match, else None.
    user: Any
    groups: grants.LoadedState | None


def account_state(user: Any, field_names: list[str], idps: frozenset[str] = frozenset()) -> AccountState:
    return AccountState(
        pk=user.pk,
        fields={name: getattr(user, name, None) for name in field_names},
        is_active=bool(getattr(user, "is_active", True)),
        is_staff=bool(getattr(user, "is_staff", False)),
        is_superuser=bool(getattr(user, "is_superuser", False)),
        idps=idps,
        lifecycle=lifecycle_of(user),
    )


def gather(ctx: Context, profile: Profile, *, lock: bool = True) -> Gathered:
    """Read the state for ``profile``'s login; ``lock`` the identity row (inside the login's transaction)."""
    identities = FederatedIdentity.objects.select_related("user", "user__saml_lifecycle")
    if lock:
        identities = identities.select_for_update(of=("self", "user"))
    identity = _bound_identity(identities, profile, lock)
    match = email_match = None
    if identity is None:
        identity, match, email_match = _match_by_email(ctx, profile, identities)
    user = identity.user if identity is not None else match
    now = timezone.now()
    loaded = _groups(ctx, profile, user, now)
    state = LoginState(
        bound=account_state(identity.user, list(profile.fields)) if identity is not None else None,
        email_match=email_match,
        groups=loaded.state if loaded is not None else GroupState(),
        usernames=_usernames(ctx, profile) if user is None else Usernames(ctx.username_field, needed=False),
        now=now,
    )
    return Gathered(state, identity, user, loaded)


def _bound_identity(identities: QuerySet[FederatedIdentity], profile: Profile, lock: bool) -> Any:
    """The identity (IdP, subject), with its user and lifecycle row, locked when ``lock``.

    The lifecycle row is locked too, through an inner join: a login that waited
    for a concurrent transition (a sweep, SCIM, an administrator) must plan
    with the state that transition wrote — PostgreSQL re-reads only the rows a
    query locks, and cannot lock the nullable side of the outer join. When that
    finds nothing, a bare existence check (no joins: a third of the ORM's work)
    tells a first login, done, from an account without a lifecycle row (made
    before saml_jit kept one), which is then read without it: one query more,
    only then. A database without row locks (SQLite serialises writers) needs
    no inner join: one query always.
    """
    where = {"idp_entity_id": profile.idp_entity_id, "subject": profile.subject}
    if not lock or not connections[identities.db].features.has_select_for_update:
        return _one(identities.filter(**where))
    with_row = identities.filter(user__saml_lifecycle__isnull=False).select_for_update(
        of=("self", "user", "user__saml_lifecycle")
    )
    found = _one(with_row.filter(**where))
    if found is not None or not FederatedIdentity.objects.using(identities.db).filter(**where).exists():
        return found
    return _one(identities.filter(**where))


def _one(rows: QuerySet[FederatedIdentity]) -> FederatedIdentity | None:
    """The row (IdP, subject) names, or None: a unique key, so no ORDER BY (as ``.first()`` would add)."""
    found = list(rows[:1])
    return found[0] if found else None


def _match_by_email(ctx: Context, profile: Profile, identities: QuerySet[FederatedIdentity]) -> tuple[Any, Any, Any]:
    """(identity, matching user, its state) for an identity nothing is bound to yet."""
    match = _find_by_email(ctx, profile.email)
    if match is None:
        return None, None, None
    bindings = set(match.saml_identities.values_list("idp_entity_id", "subject"))
    if (profile.idp_entity_id, profile.subject) in bindings:
        # A concurrent first login of this very identity committed between
        # our two reads: the account is ours, not a mere email match.
        return identities.get(idp_entity_id=profile.idp_entity_id, subject=profile.subject), None, None
    idps = frozenset(idp for idp, _ in bindings)
    return None, match, account_state(match, list(profile.fields), idps)


def _find_by_email(ctx: Context, email: str) -> Any:
    if not email:
        return None
    matches = list(users_with_email(ctx.user_model, email)[:2])
    if len(matches) > 1:
        raise Denied("email_ambiguous", "Several local accounts share this email address.")
    return matches[0] if matches else None


def _groups(ctx: Context, profile: Profile, user: Any, now: Any) -> grants.LoadedState | None:
    if not ctx.settings.manages_groups:
        return None
    return grants.load_state(user if user is not None else ctx.user_model(), profile, ctx.settings, now)


def _usernames(ctx: Context, profile: Profile) -> Usernames:
    """A new account may be created: the candidate usernames and which of them are taken."""
    field = ctx.username_field
    if field == ctx.user_model.get_email_field_name():
        return Usernames(field, needed=False)
    max_length = ctx.user_model._meta.get_field(field).max_length
    candidates = tuple(ctx.policy.username_candidates(profile, ctx.settings, field, max_length))
    manager = ctx.user_model._default_manager
    taken = manager.filter(**{f"{field}__in": candidates}).values_list(field, flat=True) if candidates else []
    return Usernames(field, True, max_length, candidates, frozenset(taken))
