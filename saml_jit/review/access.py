"""The access snapshot: who has what, why and since when.

Per account: its identities (IdP, subject, first and last asserted), its
lifecycle state and reason, its groups with their source — a SAML grant
(which IdP, granted at, last re-asserted, expires), a SCIM-managed group, or
manual (an administrator) — staff and superuser with their source, the last
evidence from an IdP, whether it has a usable password, and how it was
created. Accounts are read in primary-key batches with their relations
prefetched, so the whole snapshot streams in bounded memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Q, QuerySet

from ..conf import app_settings
from ..models import AccountLifecycle, FederatedIdentity, Grant, GrantKind, ScimGroup

BATCH = 1000


@dataclass(frozen=True)
class Held:
    """One piece of access: a group membership, or staff / superuser status."""

    kind: str  # "group", "staff", "superuser"
    group: str = ""
    #: "saml" (a grant from an IdP), "scim" (a group the IdP manages over SCIM) or "manual".
    source: str = "manual"
    idp_entity_id: str = ""
    granted_at: datetime | None = None
    last_asserted_at: datetime | None = None
    expires_at: datetime | None = None
    privileged: bool = False


@dataclass(frozen=True)
class AccountAccess:
    """Everything the snapshot says about one account."""

    user_id: Any
    username: str
    email: str
    is_active: bool
    state: str
    state_reason: str
    state_source: str
    state_since: datetime | None
    created_by: str
    usable_password: bool
    last_evidence: datetime | None
    identities: list[dict[str, Any]] = field(default_factory=list)
    access: list[Held] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def privileged_group_names() -> frozenset[str]:
    """Every IdP's ``PRIVILEGED_GROUPS`` (a group privileged anywhere is privileged here)."""
    names = set(app_settings.for_idp("").PRIVILEGED_GROUPS)
    for entity_id in app_settings.IDPS:
        names.update(app_settings.for_idp(entity_id).PRIVILEGED_GROUPS)
    return frozenset(names)


def accounts(*, idp: str = "", group: str = "", privileged_only: bool = False) -> QuerySet[Any]:
    """The accounts of the snapshot, filtered (by IdP identity, group membership, privileged only)."""
    users = get_user_model()._default_manager.order_by("pk")
    if idp:
        users = users.filter(pk__in=FederatedIdentity.objects.filter(idp_entity_id=idp).values("user_id"))
    if group:
        users = users.filter(groups__name=group)
    if privileged_only:
        privileged = Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name__in=privileged_group_names())
        users = users.filter(privileged)
    return users.distinct() if group or privileged_only else users


def snapshot(users: QuerySet[Any] | None = None, batch: int = BATCH) -> Iterator[AccountAccess]:
    """The snapshot of ``users`` (default: every account), one account at a time, in pk batches."""
    users = accounts() if users is None else users.order_by("pk")
    privileged, scim_groups = privileged_group_names(), set(ScimGroup.objects.values_list("group_id", flat=True))
    last = None
    while True:
        page = users.filter(pk__gt=last) if last is not None else users
        rows = list(page.select_related("saml_lifecycle")[:batch])
        if not rows:
            return
        related = Related.of([user.pk for user in rows])
        for user in rows:
            yield _account(user, related, privileged, scim_groups)
        last = rows[-1].pk


@dataclass(frozen=True)
class Related:
    """A batch's identities, grants and group memberships, by user pk: three queries per batch.

    Read as plain rows rather than with ``prefetch_related``, which builds a
    queryset per account and relation (three quarters of the snapshot's time
    with 100,000 accounts).
    """

    identities: dict[Any, list[FederatedIdentity]]
    grants: dict[Any, list[Grant]]
    #: (group pk, group name) per user, sorted by name.
    groups: dict[Any, list[tuple[Any, str]]]

    @classmethod
    def of(cls, pks: list[Any]) -> Related:
        identities: dict[Any, list[FederatedIdentity]] = defaultdict(list)
        for identity in FederatedIdentity.objects.filter(user_id__in=pks).order_by("idp_entity_id", "pk"):
            identities[identity.user_id].append(identity)
        grants: dict[Any, list[Grant]] = defaultdict(list)
        for grant in Grant.objects.filter(user_id__in=pks).order_by("pk"):
            grants[grant.user_id].append(grant)
        return cls(identities, grants, _memberships(pks))


def _memberships(pks: list[Any]) -> dict[Any, list[tuple[Any, str]]]:
    field = get_user_model()._meta.get_field("groups")
    source, target = field.m2m_field_name(), field.m2m_reverse_field_name()  # type: ignore[union-attr]
    rows = field.remote_field.through._default_manager.filter(**{f"{source}_id__in": pks})  # type: ignore[union-attr]
    groups: dict[Any, list[tuple[Any, str]]] = defaultdict(list)
    for user_id, group_id, name in rows.order_by(f"{target}__name").values_list(
        f"{source}_id", f"{target}_id", f"{target}__name"
    ):
        groups[user_id].append((group_id, name))
    return groups


def _account(user: Any, related: Related, privileged: frozenset[str], scim_groups: set[Any]) -> AccountAccess:
    row: AccountLifecycle | None = getattr(user, "saml_lifecycle", None)
    identities = related.identities.get(user.pk, [])
    evidence = [
        moment for moment in [i.last_asserted_at for i in identities] + [getattr(row, "last_scim_at", None)] if moment
    ]
    email_field = user.get_email_field_name()
    return AccountAccess(
        user_id=user.pk,
        username=user.get_username(),
        email=getattr(user, email_field, "") or "",
        is_active=bool(getattr(user, "is_active", True)),
        state=row.state if row else ("active" if getattr(user, "is_active", True) else "inactive"),
        state_reason=row.reason_code if row else "",
        state_source=row.source if row else "",
        state_since=row.since if row else None,
        created_by=row.created_by if row else "local",
        usable_password=_usable(user.password),
        last_evidence=max(evidence) if evidence else None,
        identities=[_identity(identity) for identity in identities],
        access=_held(user, related, privileged, scim_groups),
    )


def _usable(password: str) -> bool:
    return bool(password) and not password.startswith(UNUSABLE_PASSWORD_PREFIX)


def _identity(identity: FederatedIdentity) -> dict[str, Any]:
    return {
        "idp_entity_id": identity.idp_entity_id,
        "subject": identity.subject,
        "bound_at": identity.bound_at,
        "first_asserted_at": identity.first_asserted_at,
        "last_asserted_at": identity.last_asserted_at,
    }


def _held(user: Any, related: Related, privileged: frozenset[str], scim_groups: set[Any]) -> list[Held]:
    grants = {(g.kind, g.group_id): g for g in related.grants.get(user.pk, [])}
    held = []
    for group_id, name in related.groups.get(user.pk, []):
        source = "scim" if group_id in scim_groups else "manual"
        held.append(_from(grants.get((GrantKind.GROUP, group_id)), "group", name, source, name in privileged))
    for kind, flag in ((GrantKind.STAFF, "is_staff"), (GrantKind.SUPERUSER, "is_superuser")):
        if getattr(user, flag, False):
            held.append(_from(grants.get((kind, None)), kind, "", "manual", True))
    return held


def _from(grant: Grant | None, kind: str, group: str, fallback: str, privileged: bool) -> Held:
    if grant is None:
        return Held(kind, group, fallback, privileged=privileged)
    return Held(
        kind,
        group,
        "saml",
        grant.idp_entity_id,
        grant.granted_at,
        grant.last_asserted_at,
        grant.expires_at,
        privileged or grant.expires_at is not None,
    )
