"""saml_jit's middleware: the SAML session, fault answers, per-request privilege expiry.

:class:`SamlSessionMiddleware` replaces djangosaml2's and goes *before*
Django's ``SessionMiddleware``::

    MIDDLEWARE = [
        "saml_jit.middleware.SamlSessionMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        ...
    ]

djangosaml2's turns a session store that fails while it saves (the database
restarting, a terminated connection, a dead cache) into ``SuspiciousOperation``,
which Django answers 400 — after a login whose transaction has committed, so
the person is told their request was bad and the assertion is used up. This
one answers 503 with saml_jit's error page and a reference instead, for the
SAML session it saves and, being outside ``SessionMiddleware``, for a Django
session that failed to save after a completed login (checks
``saml_jit.W008``, ``saml_jit.W009``).

:class:`GrantExpiryMiddleware` enforces privilege expiry (JIT privilege).
Add it after ``AuthenticationMiddleware``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "saml_jit.middleware.GrantExpiryMiddleware",
    ]

It also ends a session whose SAML sign-in has reached its end
(``SessionNotOnOrAfter``, ``MAX_SESSION_AGE``; :mod:`saml_jit.sessions`)
even where the session engine would not (signed cookies,
``SESSION_EXPIRE_AT_BROWSER_CLOSE``).

The session remembers when to look next: the user's next grant expiry, or
``RECHECK`` seconds from now, whichever is sooner (grants may come from a login
in another browser). Until then a request costs no query; when a check is due,
one indexed query finds expired grants, which are removed before the view
runs, so ``request.user.has_perm`` already answers without the expired
privilege. The cron command ``saml_jit_expire_grants`` covers users who make no
requests at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.contrib import auth
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from djangosaml2.middleware import SamlSessionMiddleware as Djangosaml2SessionMiddleware

from . import refusals, sessions
from .provisioning import grants

#: Session key holding the ISO time of the next expiry check.
SESSION_NEXT_CHECK = "_saml_jit_next_check"

#: Longest time between two checks of one session, in seconds.
RECHECK = 300


def schedule_next_check(request: HttpRequest, expiry: datetime | None, now: datetime) -> None:
    next_check = now + timedelta(seconds=RECHECK)
    if expiry is not None and expiry < next_check:
        next_check = expiry
    request.session[SESSION_NEXT_CHECK] = next_check.isoformat()


class GrantExpiryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            self.enforce(request)
        except refusals.FAULTS as exc:
            # Fail closed: privileges that cannot be checked are not used.
            return refusals.fault(request, exc)
        return self.get_response(request)

    def enforce(self, request: HttpRequest) -> None:
        session = getattr(request, "session", None)
        if session is None:
            return
        user_id = session.get(SESSION_KEY)
        if user_id is None:
            return
        now = timezone.now()
        if sessions.session_over(session, now):
            # The IdP's SessionNotOnOrAfter or MAX_SESSION_AGE has passed (no query).
            auth.logout(request)
            return
        stored = session.get(SESSION_NEXT_CHECK)
        if stored and datetime.fromisoformat(stored) > now:
            return
        expiry = grants.next_expiry(user_id)  # the one indexed query
        if expiry is not None and expiry <= now:
            grants.expire_grants(user_id=user_id, now=now)
            self.reload_user(request)
            expiry = grants.next_expiry(user_id)
        schedule_next_check(request, expiry, now)

    @staticmethod
    def reload_user(request: HttpRequest) -> None:
        """Forget a user loaded earlier in this request: it predates the expiry."""
        if not hasattr(request, "user"):
            return
        request.__dict__.pop("_cached_user", None)
        request.__dict__.pop("_acached_user", None)
        # As AuthenticationMiddleware does; the stubs type request.user as the user, not the lazy proxy.
        request.user = SimpleLazyObject(lambda: auth.get_user(request))  # type: ignore[assignment]


#: Set on the request once a SAML login's transaction has committed.
LOGIN_COMMITTED = "saml_jit_login_committed"

#: What a session store failing to save raises: djangosaml2 turns its
#: ``UpdateError`` into ``SuspiciousOperation``; a new session's INSERT, or a
#: cache, raises the fault itself.
SESSION_SAVE_FAULTS: tuple[type[BaseException], ...] = (SuspiciousOperation, *refusals.FAULTS)


class SamlSessionMiddleware(Djangosaml2SessionMiddleware):
    """djangosaml2's ``SamlSessionMiddleware``, answering a failed session save with 503, never 400.

    Place it before ``django.contrib.sessions.middleware.SessionMiddleware``
    (it reads no other middleware's state). Nothing is saved after a 5xx
    answer, as Django does for its own session.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if getattr(request, LOGIN_COMMITTED, False) and response.status_code == 400:
            # The login committed and redirected; a 400 now is Django's
            # SessionMiddleware failing to save the session (SessionInterrupted).
            return refusals.fault(request, SuspiciousOperation("the session could not be saved"), "session_unavailable")
        if response.status_code >= 500:
            return response
        try:
            response = super().process_response(request, response)
            sessions.index_pending(request)  # Django's session is saved by now: it has its key
            return response
        except SESSION_SAVE_FAULTS as exc:
            committed = getattr(request, LOGIN_COMMITTED, False)
            return refusals.fault(request, exc, "session_unavailable" if committed else "service_unavailable")
