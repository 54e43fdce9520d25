"""Evidence an auditor can take away: streamed CSV and JSON lines.

Rows are produced lazily (querysets iterated in chunks) and written to a
``StreamingHttpResponse`` or a file as they come, so a million events or a
hundred thousand accounts export in bounded memory. CSV cells a spreadsheet
would evaluate (``=``, ``+``, ``-``, ``@``…) are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}

CAMPAIGN_FIELDS = (
    "campaign_id",
    "campaign",
    "campaign_state",
    "opened_by",
    "opened_at",
    "closed_by",
    "closed_at",
    "item_id",
    "username",
    "kind",
    "group_name",
    "source",
    "idp_entity_id",
    "since",
    "decision",
    "comment",
    "decided_by",
    "decided_at",
    "applied_at",
)


def csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # Keep spreadsheet programs from evaluating IdP-supplied text.
        return "'" + value
    return value


def csv_lines(fields: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The header, then one CSV line per row."""
    fields = list(fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in fields])
        if buffer.tell() > 65536:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def json_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, default=str) + "\n"


def streamed(rows: tuple[tuple[str, ...], Iterable[Mapping[str, Any]]], fmt: str, name: str) -> StreamingHttpResponse:
    """A download of ``rows`` (``(fields, iterable of dicts)``) as CSV or JSON lines."""
    fields, data = rows
    body = csv_lines(fields, data) if fmt == "csv" else json_lines(data)
    response = StreamingHttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def campaign_rows(campaigns: QuerySet[Any]) -> tuple[tuple[str, ...], Iterator[dict[str, Any]]]:
    """Every decision of ``campaigns``: who decided what, when, on which access."""
    return CAMPAIGN_FIELDS, _campaign_rows(campaigns)


def _campaign_rows(campaigns: QuerySet[Any]) -> Iterator[dict[str, Any]]:
    for campaign in campaigns.order_by("pk"):
        head = {
            "campaign_id": campaign.pk,
            "campaign": campaign.name,
            "campaign_state": campaign.state,
            "opened_by": campaign.opened_by,
            "opened_at": campaign.opened_at,
            "closed_by": campaign.closed_by,
            "closed_at": campaign.closed_at,
        }
        for item in campaign.items.order_by("pk").iterator(chunk_size=2000):
            yield {**head, "item_id": item.pk, **{name: getattr(item, name) for name in CAMPAIGN_FIELDS[8:]}}
