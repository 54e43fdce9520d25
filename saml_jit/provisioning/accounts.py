"""Writing accounts and identities: the same functions for SAML, SCIM and administrators.

Nothing here decides: callers pass what a plan (or a validated SCIM
request) says, inside their transaction, and record the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone

from ..models import FederatedIdentity


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
    user: Any, idp_entity_id: str, subject: str, *, name_id_format: str = "", assertion_id: str = ""
) -> FederatedIdentity:
    """Bind ``user`` to (IdP, subject). The unique constraints make a concurrent second bind fail."""
    now = timezone.now()
    return FederatedIdentity.objects.create(
        user=user,
        idp_entity_id=idp_entity_id,
        subject=subject,
        name_id_format=name_id_format,
        first_asserted_at=now,
        last_asserted_at=now,
        last_assertion_id=assertion_id,
    )


def touch(identity: FederatedIdentity, assertion_id: str) -> None:
    """Note that the IdP asserted this identity again, just now."""
    FederatedIdentity.objects.filter(pk=identity.pk).update(
        last_asserted_at=timezone.now(), last_assertion_id=assertion_id
    )


def rebind(user: Any, idp_entity_id: str, subject: str) -> None:
    """Change the subject of ``user``'s identity with ``idp_entity_id`` (the IdP renamed it, over SCIM)."""
    FederatedIdentity.objects.filter(user=user, idp_entity_id=idp_entity_id).update(subject=subject)
