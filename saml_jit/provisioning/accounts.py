"""Writing accounts and identities: the same functions for SAML, SCIM and administrators.

Nothing here decides: callers pass what a plan (or a validated SCIM
request) says, inside their transaction, and record the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import events, notifications
from ..models import EventKind, EventSource, FederatedIdentity


def create_user(
    user_model: Any, fields: Mapping[str, Any], *, is_active: bool, flags: Mapping[str, bool] | None = None
) -> Any:
    """Save a new account with ``fields`` and no usable password (it signs in through its IdP)."""
    user = user_model(**fields)
    if hasattr(user, "is_active"):
        user.is_active = is_active
    for name, value in (flags or {}).items():
        setattr(user, name, value)
    user.set_unusable_password()
    user.save()
    return user


def update_user(user: Any, changes: Mapping[str, Any], also: Iterable[str] = ()) -> list[str]:
    """Write ``changes`` (and the already-set fields named in ``also``); return the fields saved."""
    for name, value in changes.items():
        setattr(user, name, value)
    fields = [*changes, *(name for name in also if name not in changes)]
    if fields:
        user.save(update_fields=fields)
    return fields


def bind(
    user: Any,
    idp_entity_id: str,
    subject: str,
    *,
    name_id_format: str = "",
    assertion_id: str = "",
    asserted: bool = True,
    request: Any = None,
) -> FederatedIdentity:
    """Bind ``user`` to (IdP, subject). The unique constraints make a concurrent second bind fail.

    ``asserted``: the binding comes from an assertion (a SAML login), not
    from SCIM pre-provisioning. The person is told after commit
    (:func:`saml_jit.notifications.identity_linked`).
    """
    now = timezone.now()
    identity = FederatedIdentity.objects.create(
        user=user,
        idp_entity_id=idp_entity_id,
        subject=subject,
        name_id_format=name_id_format,
        bound_at=now,
        first_asserted_at=now if asserted else None,
        last_asserted_at=now if asserted else None,
        last_assertion_id=assertion_id,
    )
    notifications.identity_linked(user, identity, request)
    return identity


def touch(identity: FederatedIdentity, assertion_id: str) -> None:
    """Note that the IdP asserted this identity again, just now (the first time, for a SCIM-made one)."""
    now = timezone.now()
    first = Coalesce("first_asserted_at", Value(now))
    FederatedIdentity.objects.filter(pk=identity.pk).update(
        last_asserted_at=now, last_assertion_id=assertion_id, first_asserted_at=first
    )


def rebind(user: Any, idp_entity_id: str, subject: str) -> None:
    """Change the subject of ``user``'s identity with ``idp_entity_id`` (the IdP renamed it, over SCIM)."""
    FederatedIdentity.objects.filter(user=user, idp_entity_id=idp_entity_id).update(subject=subject)


def unbind(identity: FederatedIdentity, *, actor: str = "", request: Any = None) -> None:
    """Remove an identity from its account (an administrator's action): one event, and the person is told."""
    user = identity.user
    with transaction.atomic():
        events.record(
            EventKind.UNLINKED,
            request=request,
            user=user,
            source=EventSource.ADMIN,
            idp_entity_id=identity.idp_entity_id,
            subject=identity.subject,
            actor=actor,
            message="identity removed from the account",
        )
        identity.delete()
        notifications.identity_unlinked(user, identity, request)
