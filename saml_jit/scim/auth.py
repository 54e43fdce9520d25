"""Which SCIM client a request comes from, and the refusals.

Tokens are minted, hashed and revoked in :mod:`saml_jit.tokens` (their names
stay importable from here). A refused token is never stored or logged, and
refusals are recorded as events at most once per client address per
``SCIM_REFUSAL_EVENT_INTERVAL`` seconds (kept in the Django cache, so every
node shares the limit).
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone

from .. import events, refusals
from ..exceptions import Rejected
from ..models import EventKind, EventSource, ScimClient
from ..tokens import TOKEN_PREFIX, create_client, hash_token, new_token, revoke
from . import conf

__all__ = ["TOKEN_PREFIX", "authenticate", "bearer_token", "create_client", "hash_token", "new_token", "revoke"]

logger = logging.getLogger(__name__)

#: How stale ``last_used_at`` may get before a request writes it again.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate(request: HttpRequest) -> ScimClient | None:
    """The active client whose token the request carries, or None (and an event)."""
    token = bearer_token(request)
    if token is None:
        _refuse(request, "missing_token", "No bearer token was sent.")
        return None
    digest = hash_token(token)
    client = ScimClient.objects.filter(token_hash=digest).first()
    if client is None or not hmac.compare_digest(client.token_hash, digest):
        _refuse(request, "invalid_token", "The bearer token matches no SCIM client.")
        return None
    if client.revoked:
        _refuse(request, "revoked_token", "The SCIM client's token was revoked.", client)
        return None
    _touch(client)
    return client


def _touch(client: ScimClient) -> None:
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_RESOLUTION:
        ScimClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now


def _refuse(request: HttpRequest, code: str, message: str, client: ScimClient | None = None) -> None:
    address = events.client_ip(request) or "-"
    interval = conf.refusal_event_interval()
    # cache.add is atomic: one event per address and interval on all nodes.
    if interval > 0 and not cache.add(f"saml_jit:scim:refused:{address}", 1, interval):
        return
    refusals.record(
        Rejected(code, message, status=401),
        request=request,
        kind=EventKind.TOKEN_REFUSED,
        source=EventSource.SCIM,
        idp_entity_id=client.idp_entity_id if client else "",
        actor=client.name if client else "",
    )
