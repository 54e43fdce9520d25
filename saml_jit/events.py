"""The single writer of provisioning events."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest

from . import signals
from .models import EventKind, EventSource, ProvisioningEvent

logger = logging.getLogger(__name__)

_SIGNALS: dict[str, Signal] = {
    EventKind.CREATED: signals.user_provisioned,
    EventKind.LINKED: signals.user_provisioned,
    EventKind.UPDATED: signals.user_updated,
    EventKind.DENIED: signals.login_denied,
    EventKind.REJECTED: signals.assertion_rejected,
}

_MAX_USER_AGENT = ProvisioningEvent._meta.get_field("user_agent").max_length or 512


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address. Behind a proxy, set REMOTE_ADDR from a trusted header in middleware."""
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


def _user_agent(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return request.META.get("HTTP_USER_AGENT", "")[:_MAX_USER_AGENT]


def record(
    kind: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    source: str = EventSource.SAML,
    **fields: Any,
) -> ProvisioningEvent:
    """Write one event row and, after commit, send the matching signal.

    ``fields`` are model fields of :class:`ProvisioningEvent` (``idp_entity_id``,
    ``subject``, ``assertion_id``, ``diff``, ``reason_code``, ``message``,
    ``attributes``).
    """
    event = ProvisioningEvent.objects.create(
        kind=kind,
        source=source,
        user=user,
        username=user.get_username() if user is not None else fields.pop("username", ""),
        ip_address=client_ip(request),
        user_agent=_user_agent(request),
        **fields,
    )
    logger.info("saml_jit event %s kind=%s idp=%s", event.pk, kind, event.idp_entity_id)
    signal = _SIGNALS.get(kind)
    if signal is not None:
        transaction.on_commit(lambda: _notify(signal, event, user, request))
    return event


def _notify(signal: Signal, event: ProvisioningEvent, user: Any, request: HttpRequest | None) -> None:
    for receiver, result in signal.send_robust(sender=event.kind, event=event, user=user, request=request):
        if isinstance(result, Exception):
            logger.error("saml_jit signal receiver %r failed for event %s", receiver, event.pk, exc_info=result)
