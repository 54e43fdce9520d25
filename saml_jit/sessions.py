"""Sessions that follow the IdP: what a SAML sign-in leaves in the Django session, and for how long.

After a login the session remembers where it came from (:data:`IDP`,
:data:`ASSERTION_ID`, :data:`AUTHN_INSTANT`, :data:`AUTHN_CONTEXT`) and
whether privileges were withheld for want of MFA (:data:`STEP_UP`, the cue
for a "step up" link, see :func:`step_up_url`). It ends at the earliest of
Django's ``SESSION_COOKIE_AGE``, the IdP's ``MAX_SESSION_AGE`` and the
assertion's ``SessionNotOnOrAfter`` (:func:`saml_jit.saml.authn.session_expiry`):
saml_jit shortens sessions, never lengthens them. The end is the session's
own expiry and, checked on each request by
:class:`~saml_jit.middleware.GrantExpiryMiddleware`, :data:`SESSION_END`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from .conf import IdPSettings
from .provisioning.sessions import index_session
from .saml.authn import session_expiry
from .saml.data import AssertionData

#: Session keys (all under the ``_saml_jit_`` prefix).
IDP = "_saml_jit_idp"
ASSERTION_ID = "_saml_jit_assertion_id"
AUTHN_INSTANT = "_saml_jit_authn_instant"
AUTHN_CONTEXT = "_saml_jit_authn_context"
#: When the session must end (ISO 8601): enforced by ``GrantExpiryMiddleware`` too, for engines or
#: settings where the session's own expiry is not (signed cookies, ``SESSION_EXPIRE_AT_BROWSER_CLOSE``).
SESSION_END = "_saml_jit_session_end"
#: Set when this sign-in's privileges were withheld (``PRIVILEGES_REQUIRE_MFA``): offer a step-up.
STEP_UP = "_saml_jit_step_up"


def remember_login(
    request: HttpRequest, assertion: AssertionData, idp: IdPSettings, *, user: Any, privileges_withheld: bool
) -> None:
    """Call right after ``auth.login``: the session's origin, its end, and (``LOGOUT_ALL_SESSIONS``) its index row."""
    session = request.session
    authn = assertion.authn
    session[IDP] = assertion.idp_entity_id
    session[ASSERTION_ID] = assertion.assertion_id
    session[AUTHN_INSTANT] = authn.instant.isoformat() if authn.instant is not None else None
    session[AUTHN_CONTEXT] = authn.context_class
    if privileges_withheld:
        session[STEP_UP] = True
    else:
        session.pop(STEP_UP, None)
    expires_at, _ = session_expiry(authn, idp.MAX_SESSION_AGE, settings.SESSION_COOKIE_AGE, timezone.now())
    session[SESSION_END] = expires_at.isoformat()
    if not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE:
        # A fixed expiry would make a browser-session cookie persistent: there, SESSION_END alone ends it.
        session.set_expiry(expires_at)
    if idp.LOGOUT_ALL_SESSIONS:
        # auth.login cycled the session key, so the session has its final key by now.
        index_session(
            user,
            assertion.idp_entity_id,
            session_key=session.session_key,
            assertion_id=assertion.assertion_id,
            authn=authn,
            expires_at=expires_at,
        )


def session_over(session: Any, now: Any) -> bool:
    """Whether the SAML sign-in this session holds has reached its end (:data:`SESSION_END`)."""
    end = session.get(SESSION_END)
    return bool(end) and datetime.fromisoformat(end) <= now


def step_up_url(request: HttpRequest, next_url: str = "") -> str | None:
    """The step-up link for this session when its privileges were withheld, else None.

    Show it where the person would look for what they miss (the admin, a
    banner); following it signs in again at the same IdP with ForceAuthn and
    the MFA context.
    """
    session = getattr(request, "session", None)
    if session is None or not session.get(STEP_UP):
        return None
    query = {"next": next_url} if next_url else {}
    return reverse("saml2_step_up") + (f"?{urlencode(query)}" if query else "")
