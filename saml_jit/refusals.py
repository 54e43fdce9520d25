"""The one place a refusal becomes its event and its answer.

Whatever refused — the saml layer (:class:`~saml_jit.exceptions.Rejected`),
the replay guard (:class:`~saml_jit.exceptions.Replayed`) or the mapping and
the policy (:class:`~saml_jit.exceptions.Denied`) — and wherever it happened
(the ACS, the logout endpoint, SCIM, a command), :func:`record` writes its
single event and logs one line of identifiers, and :func:`answer` renders the
page the person sees: the policy's friendly message for the reason code, the
code, the reference, and the administrator's detail for staff only.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import events
from .conf import app_settings
from .exceptions import Denied, Refusal
from .models import EventKind, EventSource

logger = logging.getLogger(__name__)


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
        **fields,
    )
    level = logging.INFO if isinstance(refusal, Denied) else logging.WARNING
    logger.log(
        level,
        "saml_jit refused kind=%s reason=%s idp=%s event=%s",
        event.kind,
        refusal.code,
        event.idp_entity_id,
        event.pk,
    )
    return event


def answer(request: HttpRequest, refusal: Refusal, event: Any = None, *, pending: bool = False) -> HttpResponse:
    """The error page for ``refusal`` (``SAML_JIT["ERROR_TEMPLATE"]``), with the refusal's status."""
    from .policy import get_policy

    user = getattr(request, "user", None)
    context = {
        "reason_code": refusal.code,
        "reason": get_policy().error_message(refusal.code),
        "detail": refusal.message if getattr(user, "is_staff", False) else "",
        "event": event,
        "reference": event.pk if event is not None else None,
        "pending": pending,
        "status": refusal.status,
    }
    return render(request, app_settings.ERROR_TEMPLATE, context, status=refusal.status)
