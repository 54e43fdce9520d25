"""Selected events as CSV or JSON lines, for review outside the admin."""

from __future__ import annotations

import csv
import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse

EXPORT_FIELDS = (
    "id",
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
)


def csv_export(queryset: QuerySet) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="saml_jit_events.csv"'
    writer = csv.writer(response)
    writer.writerow(EXPORT_FIELDS)
    for row in queryset.values_list(*EXPORT_FIELDS).iterator():
        writer.writerow([_csv_cell(value) for value in row])
    return response


def json_lines_export(queryset: QuerySet) -> HttpResponse:
    response = HttpResponse(content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="saml_jit_events.jsonl"'
    for row in queryset.values(*EXPORT_FIELDS).iterator():
        response.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    return response


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # Keep spreadsheet programs from evaluating IdP-supplied text.
        return "'" + value
    return value
