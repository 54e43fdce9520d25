"""Gathering: everything a login plans against, read before the policy is asked.

One pass of reads — the identity (locked), the account with the same email
when nothing is bound, the account's groups and grants, and which candidate
usernames are taken — gives the planner its plain-data
:class:`~saml_jit.planning.LoginState`, and keeps the rows that applying the
plan needs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import Manager, QuerySet
from django.utils import timezone

from ..conf import IdPSettings
from ..exceptions import Denied
from ..groups import GroupState
from ..mapping import Profile
from ..models import FederatedIdentity, lifecycle_of, users_with_email
from ..models.prepared import PreparedRead
from ..models.users import users_with_upper_email
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
    using = router.db_for_write(FederatedIdentity) if lock else router.db_for_read(FederatedIdentity)
    identity = _bound_identity(using, profile, lock)
    match = email_match = None
    if identity is None:
        identity, match, email_match = _match_by_email(ctx, profile, using, lock)
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


def _identity_read(*, lock: bool, with_row: bool = False) -> PreparedRead:
    """The identity (IdP, subject) with its user and lifecycle row; locked (``lock``), or only with the row."""

    def build(idp: str, subject: str) -> QuerySet[FederatedIdentity]:
        rows = FederatedIdentity.objects.select_related("user", "user__saml_lifecycle")
        rows = rows.filter(idp_entity_id=idp, subject=subject)
        if with_row:
            rows = rows.filter(user__saml_lifecycle__isnull=False)
            rows = rows.select_for_update(of=("self", "user", "user__saml_lifecycle"))
        elif lock:
            rows = rows.select_for_update(of=("self", "user"))
        return rows[:1]  # a unique key: no ORDER BY (as ``.first()`` would add)

    return PreparedRead(build, "idp", "subject")


#: The identity reads of a login, compiled once (:mod:`saml_jit.models.prepared`): ~0.5 ms each saved.
_IDENTITY = _identity_read(lock=False)
_LOCKED_IDENTITY = _identity_read(lock=True)
_LOCKED_IDENTITY_WITH_ROW = _identity_read(lock=True, with_row=True)
_IDENTITY_EXISTS = PreparedRead(
    lambda idp, subject: FederatedIdentity.objects.filter(idp_entity_id=idp, subject=subject).only("pk")[:1],
    "idp",
    "subject",
)


def _first(read: PreparedRead, using: str, profile: Profile) -> Any:
    found = read.fetch(using, idp=profile.idp_entity_id, subject=profile.subject)
    return found[0] if found else None


def _bound_identity(using: str, profile: Profile, lock: bool) -> Any:
    """The identity (IdP, subject), with its user and lifecycle row, locked when ``lock``.

    The lifecycle row is locked too, through an inner join: a login that waited
    for a concurrent transition (a sweep, SCIM, an administrator) must plan
    with the state that transition wrote — PostgreSQL re-reads only the rows a
    query locks, and cannot lock the nullable side of the outer join. When that
    finds nothing, a bare existence check (no joins: a third of the work)
    tells a first login, done, from an account without a lifecycle row (made
    before saml_jit kept one), which is then read without it: one query more,
    only then. A database without row locks (SQLite serialises writers) needs
    no inner join: one query always.
    """
    if not lock:
        return _first(_IDENTITY, using, profile)
    if not connections[using].features.has_select_for_update:
        return _first(_LOCKED_IDENTITY, using, profile)
    found = _first(_LOCKED_IDENTITY_WITH_ROW, using, profile)
    if found is not None or _first(_IDENTITY_EXISTS, using, profile) is None:
        return found
    return _first(_LOCKED_IDENTITY, using, profile)


def _match_by_email(ctx: Context, profile: Profile, using: str, lock: bool) -> tuple[Any, Any, Any]:
    """(identity, matching user, its state) for an identity nothing is bound to yet."""
    match = _find_by_email(ctx, profile.email)
    if match is None:
        return None, None, None
    bindings = set(match.saml_identities.values_list("idp_entity_id", "subject"))
    if (profile.idp_entity_id, profile.subject) in bindings:
        # A concurrent first login of this very identity committed between
        # our two reads: the account is ours, not a mere email match.
        return _bound_identity(using, profile, lock), None, None
    idps = frozenset(idp for idp, _ in bindings)
    return None, match, account_state(match, list(profile.fields), idps)


def _find_by_email(ctx: Context, email: str) -> Any:
    if not email:
        return None
    read = _user_reads(ctx.user_model).email
    if read is not None:
        matches = read.fetch(router.db_for_read(ctx.user_model), email=email.upper())
    else:
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
    return Usernames(field, True, max_length, candidates, _taken(ctx.user_model, field, candidates))


def _taken(user_model: Any, field: str, candidates: tuple[str, ...]) -> frozenset[str]:
    """Which of the ``candidates`` are the ``field`` (the username) of an account already."""
    if not candidates:
        return frozenset()
    read = _user_reads(user_model).taken(field, len(candidates))
    if read is None:
        manager = user_model._default_manager
        return frozenset(manager.filter(**{f"{field}__in": candidates}).values_list(field, flat=True))
    values = {f"candidate{i}": candidate for i, candidate in enumerate(candidates)}
    return frozenset(getattr(user, field) for user in read.fetch(router.db_for_read(user_model), **values))


class _UserReads:
    """The first login's reads of the user table, prepared — unless the user model's manager filters its queryset.

    A manager that overrides ``get_queryset`` may filter by something other
    than the values (a tenant, a flag): compiled once, that would be frozen.
    Its reads go through the ORM every time.
    """

    #: Candidate usernames in one prepared read (the default policy offers
    #: ``USERNAME_ATTEMPTS``, 50); a policy that offers more is read through the ORM.
    MAX_CANDIDATES = 100

    def __init__(self, user_model: Any) -> None:
        manager = type(user_model._default_manager)
        self.preparable = manager.get_queryset is Manager.get_queryset
        self.user_model = user_model
        self.email = (
            PreparedRead(lambda email: users_with_upper_email(user_model, email)[:2], "email")
            if self.preparable
            else None
        )
        self._taken: dict[tuple[str, int], PreparedRead] = {}

    def taken(self, field: str, count: int) -> PreparedRead | None:
        if not self.preparable or count > self.MAX_CANDIDATES:
            return None
        read = self._taken.get((field, count))
        if read is None:
            names = tuple(f"candidate{i}" for i in range(count))
            manager = self.user_model._default_manager

            def build(**candidates: str) -> QuerySet[Any]:
                return manager.filter(**{f"{field}__in": [candidates[name] for name in names]}).only(field)

            read = self._taken.setdefault((field, count), PreparedRead(build, *names))
        return read


@functools.cache
def _user_reads(user_model: Any) -> _UserReads:
    return _UserReads(user_model)
