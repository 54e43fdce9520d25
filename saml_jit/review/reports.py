"""Reports over accounts: ways around SSO (and, with the review work, orphans, duplicates, review debt).

Each report is a query (counted and listed by the admin and the
``saml_jit_lifecycle report`` command), never a scan of every user in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Q, QuerySet
from django.utils import timezone

from ..provisioning.lifecycle import DATABASE_SESSION_ENGINES


@dataclass(frozen=True)
class SsoBypass:
    """Ways around single sign-on."""

    #: Accounts bound to an IdP that also have a usable password.
    sso_with_password: QuerySet[Any]
    #: Staff and superusers with no federated identity (local administrators).
    privileged_without_identity: QuerySet[Any]
    #: Sessions of accounts that are not active: always 0 (None: the session engine cannot be listed).
    inactive_sessions: int | None


def sso_with_password() -> QuerySet[Any]:
    users = get_user_model()._default_manager
    usable = ~Q(password__startswith=UNUSABLE_PASSWORD_PREFIX) & ~Q(password="")
    return users.filter(usable, pk__in=_bound_user_ids()).order_by("pk")


def privileged_without_identity() -> QuerySet[Any]:
    users = get_user_model()._default_manager
    return users.filter(Q(is_staff=True) | Q(is_superuser=True)).exclude(pk__in=_bound_user_ids()).order_by("pk")


def _bound_user_ids() -> Any:
    from ..models import FederatedIdentity

    return FederatedIdentity.objects.values("user_id")


def inactive_sessions() -> int | None:
    """Unexpired database sessions of accounts that are not active (one pass over the sessions)."""
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return None
    from django.contrib.sessions.models import Session

    sessions = Session.objects.filter(expire_date__gt=timezone.now()).iterator()
    owners = [owner for s in sessions if (owner := s.get_decoded().get(SESSION_KEY)) is not None]
    if not owners:
        return 0
    users = get_user_model()._default_manager.filter(pk__in=set(owners), is_active=False)
    inactive = {str(pk) for pk in users.values_list("pk", flat=True)}
    return sum(str(owner) in inactive for owner in owners)


def sso_bypass() -> SsoBypass:
    return SsoBypass(sso_with_password(), privileged_without_identity(), inactive_sessions())
