"""The session index: record the sessions a SAML login established, end them all at single logout.

Kept only for IdPs with ``LOGOUT_ALL_SESSIONS`` (a returning login elsewhere
costs no query for it). Ending goes through the configured session engine:
database and ``cached_db`` sessions are deleted in one query per 500 keys,
cache and file sessions key by key; whichever node receives the IdP's
LogoutRequest ends sessions held on any node, since the index and the
session store are shared. Signed-cookie sessions live only in the browser
and cannot be ended from the server (system check ``saml_jit.W030``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings

from ..models import SamlSession
from ..saml.data import Authn
from .lifecycle import DATABASE_SESSION_ENGINES, delete_sessions

logger = logging.getLogger(__name__)

SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"


def index_session(
    user: Any, idp_entity_id: str, *, session_key: str | None, assertion_id: str, authn: Authn, expires_at: datetime
) -> None:
    """Record one new session of ``user`` from ``idp_entity_id``: one INSERT (``saml_jit_prune`` drops ended ones)."""
    if not session_key:  # signed cookies: there is no server-side session to end later
        return
    SamlSession.objects.create(
        user=user,
        idp_entity_id=idp_entity_id,
        session_key=session_key,
        assertion_id=assertion_id[:255],
        authn_instant=authn.instant,
        authn_context=authn.context_class[:255],
        expires_at=expires_at,
    )


def end_sessions_from(user: Any, idp_entity_id: str) -> int:
    """End every indexed session of ``user`` from ``idp_entity_id``; return how many were indexed."""
    rows = SamlSession.objects.filter(user=user, idp_entity_id=idp_entity_id)
    keys = list(rows.values_list("session_key", flat=True))
    if settings.SESSION_ENGINE in DATABASE_SESSION_ENGINES:
        delete_sessions(keys)
    elif settings.SESSION_ENGINE != SIGNED_COOKIES:
        store = import_module(settings.SESSION_ENGINE).SessionStore
        for key in keys:
            store(session_key=key).delete()
    rows.delete()
    logger.info("saml_jit ended %d session(s) of user id=%s from idp=%s", len(keys), user.pk, idp_entity_id)
    return len(keys)
