"""Evidence an auditor can take away: streamed CSV and JSON lines.

Rows are produced lazily (querysets iterated in chunks, accounts in primary-key
batches) and written to a ``StreamingHttpResponse`` or a file as they come, so
a million events or a hundred thousand accounts export in bounded memory.
CSV cells a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``…) are
neutralised; dates are ISO 8601 in both formats.

* :func:`event_rows` — provisioning events, oldest first (by reference),
  with whether each needs review and who reviewed it when;
* :func:`snapshot_rows` — the access snapshot: in CSV one row per (account,
  access item), in JSON lines one object per account with its identities and
  access nested;
* :func:`campaign_rows` — review campaigns and their decisions;
* :func:`streamed` (a download) and :func:`lines` (text chunks, for a file).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from .access import AccountAccess, Held, snapshot

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
FORMATS = tuple(CONTENT_TYPES)
#: Rows fetched per round trip; also the most rows held in memory at once.
CHUNK = 2000
#: Text buffered before a chunk is handed to the response or the file.
FLUSH_AT = 65536

Rows = tuple[tuple[str, ...], Iterable[Mapping[str, Any]]]

#: An event's columns: its reference (``#<id>``, as error pages show it) after its id.
EVENT_FIELDS = (
    "id",
    "reference",
    "created_at",
    "kind",
    "source",
    "idp_entity_id",
    "subject",
    "assertion_id",
    "user_id",
    "username",
    "reason_code",
    "message",
    "diff",
    "attributes",
    "ip_address",
    "user_agent",
    "actor",
    "review_required",
    "reviewed_by",
    "reviewed_at",
)
#: The review columns, read through the one-to-one review (a unique-index look-up per event).
_REVIEW_COLUMNS = {"reviewed_by": "review__reviewed_by", "reviewed_at": "review__reviewed_at"}
_EVENT_COLUMNS = tuple(name for name in EVENT_FIELDS if name != "reference")
_EVENT_LOOKUPS = tuple(_REVIEW_COLUMNS.get(name, name) for name in _EVENT_COLUMNS)

SNAPSHOT_ACCOUNT_FIELDS = (
    "user_id",
    "username",
    "email",
    "is_active",
    "state",
    "state_reason",
    "state_source",
    "state_since",
    "created_by",
    "usable_password",
    "last_evidence",
    "identities",
)
#: One access item (a group, staff or superuser) in CSV: :class:`~saml_jit.review.access.Held`, prefixed.
SNAPSHOT_ACCESS_FIELDS = (
    "access_kind",
    "access_group",
    "access_source",
    "access_idp_entity_id",
    "access_granted_at",
    "access_last_asserted_at",
    "access_expires_at",
    "access_privileged",
)
SNAPSHOT_CSV_FIELDS = SNAPSHOT_ACCOUNT_FIELDS + SNAPSHOT_ACCESS_FIELDS
SNAPSHOT_JSON_FIELDS = (*SNAPSHOT_ACCOUNT_FIELDS, "access")

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


# ----------------------------------------------------------------------------
# Formats


def _plain(value: Any) -> Any:
    """What JSON cannot say natively: dates as ISO 8601, anything else as text."""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


#: What a spreadsheet program evaluates at the start of a cell (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# One encoder each, not one per cell or line: json.dumps with options builds a new one every call.
_CELL_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=_plain)
_LINE_JSON = json.JSONEncoder(ensure_ascii=False, default=_plain)


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: text that would start a formula quoted with ``'``, JSON for structures."""
    if type(value) is str:  # the common case first: an export is millions of cells
        # Keep spreadsheet programs from evaluating IdP-supplied text.
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if isinstance(value, (dict, list)):
        return _CELL_JSON.encode(value) if value else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return csv_cell(str(value))  # a str subclass (SafeString, a lazy translation's result)
    return value


def csv_lines(fields: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The header, then CSV lines, in chunks of about ``FLUSH_AT`` characters."""
    fields = list(fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in fields])
        if buffer.tell() > FLUSH_AT:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def json_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One JSON object per line, in chunks of about ``FLUSH_AT`` characters."""
    chunk: list[str] = []
    size = 0
    for row in rows:
        line = _LINE_JSON.encode(row) + "\n"
        chunk.append(line)
        size += len(line)
        if size > FLUSH_AT:
            yield "".join(chunk)
            chunk, size = [], 0
    yield "".join(chunk)


def lines(rows: Rows, fmt: str) -> Iterator[str]:
    """``rows`` (``(fields, iterable of dicts)``) as text chunks in ``fmt`` (``csv`` or ``jsonl``)."""
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"Unknown export format {fmt!r}: choose from {', '.join(FORMATS)}.")
    fields, data = rows
    return csv_lines(fields, data) if fmt == "csv" else json_lines(data)


def streamed(rows: Rows, fmt: str, name: str) -> StreamingHttpResponse:
    """A download of ``rows`` (``(fields, iterable of dicts)``) as CSV or JSON lines."""
    response = StreamingHttpResponse(lines(rows, fmt), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


# ----------------------------------------------------------------------------
# Events


def event_rows(events: QuerySet[Any], chunk_size: int = CHUNK) -> tuple[tuple[str, ...], Iterator[dict[str, Any]]]:
    """Every event of ``events``, oldest first (by reference), read ``chunk_size`` rows at a time.

    One query; ``iterator()`` reads it through a server-side cursor on
    PostgreSQL and ``fetchmany`` on SQLite, so no more than a chunk of rows is
    held in memory. The queryset's own ordering (the changelist's) is replaced
    by the primary key: the order an IdP's evidence happened in, and what a
    SIEM resumes from.
    """
    return EVENT_FIELDS, _event_rows(events, chunk_size)


def _event_rows(events: QuerySet[Any], chunk_size: int) -> Iterator[dict[str, Any]]:
    for values in events.order_by("pk").values_list(*_EVENT_LOOKUPS).iterator(chunk_size=chunk_size):
        row = dict(zip(_EVENT_COLUMNS, values, strict=True))
        row["reference"] = f"#{row['id']}"
        row["reviewed_by"] = row["reviewed_by"] or ""  # no review: an empty cell, as for the other text columns
        yield row


# ----------------------------------------------------------------------------
# The access snapshot


def snapshot_rows(users: QuerySet[Any], fmt: str) -> tuple[tuple[str, ...], Iterator[dict[str, Any]]]:
    """The access snapshot of ``users`` (see :func:`saml_jit.review.access.accounts`) for ``fmt``.

    ``csv``: one row per (account, access item), the account's columns
    repeated; an account without access has one row with the access columns
    empty; its identities are one JSON cell. ``jsonl``: one object per
    account, its identities and access as lists.
    """
    if fmt == "csv":
        return SNAPSHOT_CSV_FIELDS, _flat(snapshot(users))
    if fmt == "jsonl":
        return SNAPSHOT_JSON_FIELDS, (account.as_dict() for account in snapshot(users))
    raise ValueError(f"Unknown export format {fmt!r}: choose from {', '.join(FORMATS)}.")


def _flat(accounts: Iterable[AccountAccess]) -> Iterator[dict[str, Any]]:
    for account in accounts:
        head = {name: getattr(account, name) for name in SNAPSHOT_ACCOUNT_FIELDS}
        if not account.access:
            yield head
        for held in account.access:
            yield {**head, **_access_columns(held)}


def _access_columns(held: Held) -> dict[str, Any]:
    return {
        "access_kind": held.kind,
        "access_group": held.group,
        "access_source": held.source,
        "access_idp_entity_id": held.idp_entity_id,
        "access_granted_at": held.granted_at,
        "access_last_asserted_at": held.last_asserted_at,
        "access_expires_at": held.expires_at,
        "access_privileged": held.privileged,
    }


# ----------------------------------------------------------------------------
# Review campaigns


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
        for item in campaign.items.order_by("pk").iterator(chunk_size=CHUNK):
            yield {**head, "item_id": item.pk, **{name: getattr(item, name) for name in CAMPAIGN_FIELDS[8:]}}
