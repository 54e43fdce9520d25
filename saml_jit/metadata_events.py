"""Refused IdP metadata becomes an event: the XML layer reports, this module records.

:mod:`saml_jit.saml.metadata` writes no rows (the layering contract); it
sends :data:`~saml_jit.saml.metadata.refused` for every failed or refused
fetch, and this receiver records one ``rejected`` event with source
``system`` and the reason code (``metadata_fetch_failed``,
``metadata_bad_signature``, ``metadata_expired``, ``metadata_invalid``), so
that the admin's event review shows a federation going stale before logins
start failing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError

from . import events
from .models import EventKind, EventSource, ProvisioningEvent
from .saml import metadata

logger = logging.getLogger(__name__)

_MESSAGE_LENGTH = 500


def record_refusal(
    sender: Any = None,
    *,
    source: metadata.Source,
    code: str,
    detail: str,
    entity_ids: Sequence[str] = (),
    **kwargs: Any,
) -> ProvisioningEvent | None:
    """One event per refused fetch; the IdP is named when the source describes exactly one."""
    try:
        return events.record(
            EventKind.REJECTED,
            source=EventSource.SYSTEM,
            idp_entity_id=entity_ids[0] if len(entity_ids) == 1 else "",
            reason_code=code,
            message=f"Metadata from {source.label}: {detail}"[:_MESSAGE_LENGTH],
        )
    except DatabaseError:
        # A fetch may fail while the database is down too; the log line above stays.
        logger.exception("saml_jit could not record the metadata refusal (%s)", code)
        return None


def connect() -> None:
    metadata.refused.connect(record_refusal, dispatch_uid="saml_jit.metadata_events.record_refusal")
