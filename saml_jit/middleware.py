"""Per-request enforcement of privilege expiry (JIT privilege).

Add after ``AuthenticationMiddleware``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "saml_jit.middleware.GrantExpiryMiddleware",
    ]

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
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

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
        self.enforce(request)
        return self.get_response(request)

    def enforce(self, request: HttpRequest) -> None:
        session = getattr(request, "session", None)
        if session is None:
            return
        user_id = session.get(SESSION_KEY)
        if user_id is None:
            return
        stored = session.get(SESSION_NEXT_CHECK)
        now = timezone.now()
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
