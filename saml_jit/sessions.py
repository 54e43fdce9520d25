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

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.base import UpdateError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from .conf import IdPSettings
from .provisioning.sessions import SIGNED_COOKIES, index_session
from .refusals import FAULTS
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


def sign_in(request: HttpRequest, user: Any) -> None:
    """``auth.login``, writing a browser's new session once, not twice.

    ``auth.login`` cycles the session key against session fixation. When the
    browser brought no stored session (no cookie, or one naming no session:
    loading it left no key), cycling means *creating* an empty session at once
    — a key lookup, an INSERT and its commit — which ``SessionMiddleware``
    then updates with the login's data. There is no key an attacker could have
    planted there; skipping the cycle lets ``SessionMiddleware`` create the
    session with its key and data in one write. A session with a key is
    cycled as always. (``LOGOUT_ALL_SESSIONS``: the index row is written once
    the session has its key, see :func:`remember_login`.) A session left
    without a key — not cycled, or flushed because it was another user's — is
    written after the view, and fails there as :func:`_fail_as_an_update` says.
    """
    session = request.session
    instance = vars(session)
    cycle_key = session.cycle_key

    def cycle_if_keyed() -> None:
        if session.session_key is not None:
            cycle_key()

    instance["cycle_key"] = cycle_if_keyed
    try:
        auth.login(request, user)
    finally:
        del instance["cycle_key"]  # the class's method again
    if session.session_key is None:  # not cycled, or flushed (another user's session): written after the view
        _fail_as_an_update(session)


def _fail_as_an_update(session: Any) -> None:
    """Make the keyless ``session``'s first write, in ``SessionMiddleware`` after the view, fail as an update does.

    A store failing there would otherwise escape ``SessionMiddleware`` as a
    bare 500. As ``UpdateError``, Django answers it with ``SessionInterrupted``
    and :class:`~saml_jit.middleware.SamlSessionMiddleware` turns that into 503
    ``session_unavailable`` with a reference.
    """
    create = session.create

    def create_or_interrupt() -> None:
        try:
            create()
        except FAULTS as exc:
            raise UpdateError from exc

    vars(session)["create"] = create_or_interrupt


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
        index = partial(
            index_session,
            user,
            assertion.idp_entity_id,
            assertion_id=assertion.assertion_id,
            authn=authn,
            expires_at=expires_at,
        )
        _index_when_keyed(request, index)


#: The request attribute holding a session index row to write once the new session has its key.
INDEX_PENDING = "saml_jit_session_index_pending"
SAML_SESSION_MIDDLEWARE = "saml_jit.middleware.SamlSessionMiddleware"


def _index_when_keyed(request: HttpRequest, index: Callable[..., None]) -> None:
    """Index the session now if it has a key, else once it is saved (by ``SamlSessionMiddleware``).

    A fresh browser's session is created only when the response is saved (one
    write, see :func:`sign_in`); saml_jit's session middleware wraps Django's and
    writes the row right after. Without it the session is saved now, one
    write more.
    """
    session = request.session
    if session.session_key is None and settings.SESSION_ENGINE != SIGNED_COOKIES:
        if SAML_SESSION_MIDDLEWARE in settings.MIDDLEWARE:
            setattr(request, INDEX_PENDING, index)
            return
        # Saved here, in the view: a failing store is the view's fault (503), not an interrupted update.
        vars(session).pop("create", None)
        session.save()
    index(session_key=session.session_key)


def index_pending(request: HttpRequest) -> None:
    """Write the index row :func:`remember_login` left for this request's now saved session, if any."""
    index = getattr(request, INDEX_PENDING, None)
    if index is not None:
        delattr(request, INDEX_PENDING)
        index(session_key=request.session.session_key)


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
