"""Events as CSV or JSON lines, streamed: the selection (actions) or the whole filtered list (links).

The rows come from :func:`saml_jit.review.exports.event_rows` (the command
``saml_jit_export events`` writes the same), so a million events download in
bounded memory; CSV cells a spreadsheet would evaluate are neutralised.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.admin.views.main import PAGE_VAR
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict, StreamingHttpResponse

from ..review.exports import EVENT_FIELDS, FORMATS, event_rows, streamed

logger = logging.getLogger(__name__)

EXPORT_FIELDS = EVENT_FIELDS
#: The query parameter that turns a changelist into its download: ``?_export=csv`` or ``?_export=jsonl``.
EXPORT_PARAM = "_export"
EVENTS_FILENAME = "saml_jit_events"


def event_export(request: HttpRequest, queryset: QuerySet[Any], fmt: str) -> StreamingHttpResponse:
    """``queryset``'s events as a streamed download in ``fmt`` (``csv`` or ``jsonl``)."""
    logger.info("Event export (%s) by user id=%s", fmt, getattr(request.user, "pk", None))
    return streamed(event_rows(queryset), fmt, EVENTS_FILENAME)


def csv_export(request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
    return event_export(request, queryset, "csv")


def json_lines_export(request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
    return event_export(request, queryset, "jsonl")


def export_links(query: QueryDict) -> list[tuple[str, str]]:
    """``(format, query string)`` for each format: the current filters plus :data:`EXPORT_PARAM`."""
    links = []
    for fmt in FORMATS:
        params = query.copy()
        params.pop(PAGE_VAR, None)  # an export is the whole result, not a page
        params[EXPORT_PARAM] = fmt
        links.append((fmt, "?" + params.urlencode()))
    return links


def without_export(query: QueryDict) -> QueryDict:
    """``query`` without :data:`EXPORT_PARAM` (the changelist refuses parameters it does not know)."""
    params = query.copy()
    params.pop(EXPORT_PARAM, None)
    return QueryDict(params.urlencode(), encoding=query.encoding)  # immutable, as request.GET is
