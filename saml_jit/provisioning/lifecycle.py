"""Deactivation and reactivation: one account state change, whatever its source.

Deactivating ends every session of the person at once, whatever the session
engine: the password is replaced by a fresh unusable one, which changes the
session auth hash, so each session (database, cache, signed cookies) fails
verification on its next request; sessions in the database are also deleted
outright. The SAML grants from the deactivating IdP are taken away.

A deactivated account is refused at the ACS (the policy denies inactive
accounts); only SCIM ``active: true`` or an administrator reactivates it.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from ..models import Grant
from .grants import expire_grants

logger = logging.getLogger(__name__)

DATABASE_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


def deactivate(user: Any, idp_entity_id: str) -> dict[str, Any]:
    """Deactivate ``user``, end their sessions, remove the grants from ``idp_entity_id``.

    Returns what changed, for the event.
    """
    user.is_active = False
    # A new unusable password changes get_session_auth_hash(): every existing
    # session stops verifying, including cache sessions that cannot be listed.
    user.set_unusable_password()
    user.save(update_fields=["is_active", "password"])
    ended = end_database_sessions(user)
    grant_ids = list(Grant.objects.filter(user=user, idp_entity_id=idp_entity_id).values_list("pk", flat=True))
    removed = expire_grants(grant_ids=grant_ids) if grant_ids else 0
    logger.info("saml_jit SCIM deactivated user id=%s sessions=%d grants=%d", user.pk, ended, removed)
    return {"is_active": [True, False], "sessions_ended": ended, "grants_removed": removed}


def reactivate(user: Any) -> dict[str, Any]:
    user.is_active = True
    user.save(update_fields=["is_active"])
    return {"is_active": [False, True]}


def end_database_sessions(user: Any) -> int:
    """Delete the user's sessions kept in the database; return how many.

    Sessions are not indexed by user, so this reads every unexpired session.
    Other engines rely on the session auth hash having changed.
    """
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return 0
    from django.contrib.sessions.models import Session

    store = import_module(settings.SESSION_ENGINE).SessionStore
    wanted = str(user._meta.pk.value_to_string(user))
    mine = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = session.get_decoded()
        if str(data.get(SESSION_KEY)) == wanted:
            mine.append(session.session_key)
    for key in mine:
        store(session_key=key).delete()  # also clears cached_db's cache entry
    return len(mine)
