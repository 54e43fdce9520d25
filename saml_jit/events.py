"""The single writer of provisioning events."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.http import HttpRequest

from . import signals
from .conf import app_settings
from .models import EventKind, EventSource, ProvisioningEvent
from .review.rules import needs_review

logger = logging.getLogger(__name__)

_SIGNALS: dict[str, tuple[Signal, ...]] = {
    EventKind.CREATED: (signals.user_provisioned,),
    EventKind.LINKED: (signals.user_provisioned,),
    EventKind.UPDATED: (signals.user_updated,),
    EventKind.DENIED: (signals.login_denied,),
    EventKind.REJECTED: (signals.assertion_rejected,),
    EventKind.APPROVED: (signals.lifecycle_changed,),
    EventKind.SUSPENDED: (signals.lifecycle_changed,),
    EventKind.REACTIVATED: (signals.lifecycle_changed,),
    EventKind.DEACTIVATED: (signals.lifecycle_changed, signals.account_deprovisioned),
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
    signal_kwargs: dict[str, Any] | None = None,
    log: bool = True,
    **fields: Any,
) -> ProvisioningEvent:
    """Write one event row and, after commit, send the matching signals.

    ``fields`` are model fields of :class:`ProvisioningEvent` (``idp_entity_id``,
    ``subject``, ``assertion_id``, ``diff``, ``reason_code``, ``message``,
    ``attributes``, ``actor``); ``signal_kwargs`` go to the signals' receivers.
    ``log=False`` when the caller logs the event's one line itself (a refusal
    logs it with its reason), so that a request is never logged twice.
    """
    event = ProvisioningEvent.objects.create(**_values(kind, request, user, source, fields))
    _recorded(event, user, request, signal_kwargs, log=log)
    return event


@dataclass(frozen=True)
class Pending:
    """One event for :func:`record_many`: the arguments :func:`record` takes."""

    kind: str
    user: Any = None
    source: str = EventSource.SAML
    request: HttpRequest | None = None
    signal_kwargs: dict[str, Any] | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def record_many(pending: Sequence[Pending]) -> list[ProvisioningEvent]:
    """:func:`record` for a batch (a sweep): one ``bulk_create``, then per event the same log line and signals."""
    rows = [ProvisioningEvent(**_values(p.kind, p.request, p.user, p.source, dict(p.fields))) for p in pending]
    created = ProvisioningEvent.objects.bulk_create(rows)
    for event, p in zip(created, pending, strict=True):
        _recorded(event, p.user, p.request, p.signal_kwargs)
    return created


def _values(kind: str, request: HttpRequest | None, user: Any, source: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {
        "kind": kind,
        "source": source,
        "user": user,
        "username": user.get_username() if user is not None else fields.pop("username", ""),
        "ip_address": client_ip(request),
        "user_agent": _user_agent(request),
        **fields,
    }
    values.setdefault("review_required", _needs_review(kind, values))
    return values


def _needs_review(kind: str, values: dict[str, Any]) -> bool:
    diff = values.get("diff") or {}
    # The IdP's privileged groups matter only when groups were added: most events read no settings.
    privileged = app_settings.for_idp(values.get("idp_entity_id") or "").PRIVILEGED_GROUPS if "groups" in diff else ()
    return needs_review(kind, diff, privileged)


def _recorded(
    event: ProvisioningEvent, user: Any, request: Any, signal_kwargs: dict[str, Any] | None, *, log: bool = True
) -> None:
    if log:
        logger.info("saml_jit event %s kind=%s idp=%s", event.pk, event.kind, event.idp_entity_id)
    for signal in _SIGNALS.get(event.kind, ()):
        notify_on_commit(signal, event, user, request, **(signal_kwargs or {}))


def notify_on_commit(signal: Signal, event: ProvisioningEvent, user: Any, request: Any, **kwargs: Any) -> None:
    """Send ``signal`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _notify(signal, event, user, request, kwargs))


def _notify(signal: Signal, event: ProvisioningEvent, user: Any, request: HttpRequest | None, kwargs: Any) -> None:
    sent = signal.send_robust(sender=event.kind, event=event, user=user, request=request, **kwargs)
    for receiver, result in sent:
        if isinstance(result, Exception):
            logger.error("saml_jit signal receiver %r failed for event %s", receiver, event.pk, exc_info=result)
