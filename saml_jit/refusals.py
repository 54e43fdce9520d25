"""The one place a refusal becomes its event and its answer.

Whatever refused — the saml layer (:class:`~saml_jit.exceptions.Rejected`),
the replay guard (:class:`~saml_jit.exceptions.Replayed`) or the mapping and
the policy (:class:`~saml_jit.exceptions.Denied`) — and wherever it happened
(the ACS, the logout endpoint, SCIM, a command), :func:`record` writes its
single event and logs one line of identifiers, and :func:`answer` renders the
page the person sees: the policy's friendly message for the reason code, the
code, the reference, and the administrator's detail for staff only.

A server fault — the database or the cache failing under a request — is not
a refusal and cannot count on writing an event: :func:`fault` logs it once,
with a generated reference, and answers 503 with the same page ("try again in
a moment", the reference to quote). :data:`FAULTS` are the exception types
that count as one.
"""

from __future__ import annotations

import importlib
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from . import events
from .conf import app_settings
from .exceptions import Denied, Refusal
from .models import EventKind, EventSource
from .saml.config import get_sp_config

logger = logging.getLogger(__name__)


def _cache_client_errors() -> tuple[type[BaseException], ...]:
    """The base exception types of the cache clients Django ships backends for, when installed."""
    found: list[type[BaseException]] = []
    for module, name in (("redis.exceptions", "RedisError"), ("pymemcache.exceptions", "MemcacheError")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


#: The database or the cache failing (unreachable, restarted, a backend
#: terminated): socket errors are ``OSError``.
FAULTS: tuple[type[BaseException], ...] = (DatabaseError, OSError, *_cache_client_errors())

#: Faults whose message describes the connection, never data (an
#: ``IntegrityError``'s message may quote a value: only its type is logged).
_DESCRIBED: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    SuspiciousOperation,
    *_cache_client_errors(),
)

#: Seconds a client is asked to wait before trying again (``Retry-After``).
RETRY_AFTER = 5


def event_kind(refusal: Refusal) -> str:
    return EventKind.DENIED if isinstance(refusal, Denied) else EventKind.REJECTED


def record(
    refusal: Refusal,
    *,
    request: HttpRequest | None = None,
    kind: str | None = None,
    source: str = EventSource.SAML,
    user: Any = None,
    **fields: Any,
) -> Any:
    """Write the refusal's one event (``denied`` or ``rejected`` unless ``kind``); return it.

    ``fields`` are event fields (``idp_entity_id``, ``subject``,
    ``assertion_id``, ``attributes``, ``actor``). Call it inside the
    transaction whose outcome the refusal is.
    """
    fields.setdefault("subject", refusal.subject)
    event = events.record(
        kind or event_kind(refusal),
        request=request,
        user=user,
        source=source,
        reason_code=refusal.code,
        message=refusal.message,
        log=False,  # the one line is below, with the reason
        **fields,
    )
    level = logging.INFO if isinstance(refusal, Denied) else logging.WARNING
    if refusal.status >= 500:  # the site could not decide (say, the replay store is down)
        level = logging.ERROR
    logger.log(
        level,
        "saml_jit refused kind=%s reason=%s idp=%s event=%s",
        event.kind,
        refusal.code,
        event.idp_entity_id,
        event.pk,
    )
    return event


def home_url() -> str:
    """Where the error page's "Home" link goes: ``HOME_URL``, else ``LOGIN_REDIRECT_URL``, else ``/``."""
    target = app_settings.HOME_URL or settings.LOGIN_REDIRECT_URL or "/"
    try:
        return str(resolve_url(target))
    except NoReverseMatch:  # a URL name that does not resolve: the page must still render
        return "/"


def is_metadata_idp(request: HttpRequest | None, entity_id: str) -> bool:
    """Whether the SP's metadata describes ``entity_id`` as an IdP (False when it cannot be read)."""
    try:
        return "idpsso_descriptor" in get_sp_config(request).metadata[entity_id]
    except Exception:  # unknown (KeyError), or the configuration itself failing: no IdP to name
        return False


def try_again_url(request: HttpRequest, idp_entity_id: str = "") -> str:
    """A new login at the same IdP when the metadata knows it, else the login page; "" without one."""
    try:
        login = reverse("saml2_login")
    except NoReverseMatch:
        return ""
    if idp_entity_id and is_metadata_idp(request, idp_entity_id):
        return f"{login}?{urlencode({'idp': idp_entity_id})}"
    return login


def _page(request: HttpRequest, context: dict[str, Any], status: int, idp_entity_id: str = "") -> HttpResponse:
    """The error page, with what to do next: a new login ("Try again") and the site's home page."""
    context = {**context, "try_again_url": try_again_url(request, idp_entity_id), "home_url": home_url()}
    return render(request, app_settings.ERROR_TEMPLATE, context, status=status)


def answer(
    request: HttpRequest, refusal: Refusal, event: Any = None, *, pending: bool = False, logged: bool | None = None
) -> HttpResponse:
    """The error page for ``refusal`` (``SAML_JIT["ERROR_TEMPLATE"]``), with the refusal's status.

    ``logged`` (default: when there is an event, whose :func:`record` logged
    its line) spares the request Django's second line ("Forbidden: /saml2/acs/").
    """
    from .policy import get_policy

    user = getattr(request, "user", None)
    context = {
        "reason_code": refusal.code,
        "reason": get_policy().error_message(refusal.code),
        "detail": refusal.message if getattr(user, "is_staff", False) else "",
        "event": event,
        "reference": event.pk if event is not None else None,
        "pending": pending or refusal.code == "pending_approval",
        "status": refusal.status,
        "fault": refusal.status >= 500,
        # What the IdP must confirm (AuthnContextRefused): context classes, no personal data.
        "needed": [(authn_label(name), name) for name in getattr(refusal, "needed", ())],
    }
    response = _page(request, context, refusal.status, getattr(event, "idp_entity_id", "") or "")
    if refusal.status == 503:
        response["Retry-After"] = str(RETRY_AFTER)
    if event is not None if logged is None else logged:
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


#: Readable names of well-known authentication contexts, for the error page.
AUTHN_LABELS: dict[str, Any] = {
    "https://refeds.org/profile/mfa": _("multi-factor authentication (REFEDS MFA)"),
    "http://schemas.microsoft.com/claims/multipleauthn": _("multi-factor authentication (Microsoft)"),
    "https://refeds.org/profile/sfa": _("single-factor authentication (REFEDS SFA)"),
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport": _("a password over a protected connection"),
    "urn:oasis:names:tc:SAML:2.0:ac:classes:X509": _("a certificate"),
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard": _("a smart card"),
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI": _("a smart card"),
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos": _("Windows (Kerberos) sign-in"),
}


def authn_label(class_ref: str) -> str:
    """A person's name for an AuthnContextClassRef (the URI itself when it has none)."""
    return str(AUTHN_LABELS.get(class_ref, class_ref))


def new_reference() -> str:
    """A reference for a fault no event could record: short, random, easy to read out."""
    return secrets.token_hex(4)


def _describe(exc: BaseException) -> str:
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if not isinstance(exc, _DESCRIBED):
        return name
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{name}: {first_line[:200]}"


def fault(request: HttpRequest, exc: BaseException, code: str = "service_unavailable") -> HttpResponse:
    """Answer a server fault (:data:`FAULTS`): logged once with a new reference, then a 503 page.

    ``code`` chooses the message: ``service_unavailable``, or
    ``session_unavailable`` once a login's transaction has committed (the
    person may already be signed in). No event is written: the database may
    be what failed; the reference ties the page to the log line.
    """
    reference = new_reference()
    logger.error("saml_jit fault ref=%s code=%s path=%s error=%s", reference, code, request.path, _describe(exc))
    logger.debug("saml_jit fault ref=%s", reference, exc_info=exc)
    from .policy import get_policy

    context = {
        "reason_code": code,
        "reason": get_policy().error_message(code),
        "detail": "",
        "event": None,
        "reference": reference,
        "pending": False,
        "status": 503,
        "fault": True,
    }
    try:
        response = _page(request, context, 503)
    except Exception:  # the page must not fail in turn (say, a site template that queries the database)
        response = HttpResponse(f"Service unavailable. Try again in a moment. Reference: {reference}\n", status=503)
        response["Content-Type"] = "text/plain; charset=utf-8"
    response["Retry-After"] = str(RETRY_AFTER)
    # Logged once, above, with the reference: Django's "Service Unavailable: /path" line would repeat it.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
