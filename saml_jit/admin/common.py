"""What every saml_jit admin shares: read-only permissions, JSON display, timestamps with seconds, short labels."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

#: Every timestamp in saml_jit's admin (local time): events seconds apart must not look simultaneous,
#: and an auditor matches them against log lines.
TIMESTAMP_FORMAT = "Y-m-d H:i:s"

#: Characters of a subject or an entity ID a list shows; the title holds the whole value.
SHORT_LENGTH = 24


class NoAddChangeMixin:
    """Rows saml_jit writes: reviewed and deleted from the admin, never added or edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdminMixin(NoAddChangeMixin):
    """Append-only rows: nobody adds, changes or deletes them from the admin."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def pretty_json(value: Any) -> str:
    if not value:
        return "-"
    return format_html(
        "<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    )


def timestamp(value: datetime | None) -> str | None:
    """``value`` in the current time zone as :data:`TIMESTAMP_FORMAT`; None stays None (the admin's "-")."""
    if value is None:
        return None
    return date_format(timezone.localtime(value) if timezone.is_aware(value) else value, TIMESTAMP_FORMAT)


def timestamp_html(value: datetime | None) -> str | None:
    """:func:`timestamp` in a ``<time>`` element that wraps only between the date and the time."""
    text = timestamp(value)
    if value is None or text is None:
        return None
    day, _, clock = text.partition(" ")
    part = '<span style="white-space:nowrap">{}</span>'
    return format_html(f'<time datetime="{{}}">{part} {part}</time>', value.isoformat(), day, clock)


def shortened(value: str, limit: int = SHORT_LENGTH) -> str:
    """``value`` cut to ``limit`` characters with an ellipsis; the whole value in the title (a tooltip)."""
    if not value:
        return "-"
    if len(value) <= limit:
        return format_html('<span title="{}">{}</span>', value, value)
    return format_html('<span title="{}">{}…</span>', value, value[: limit - 1])


def idp_label(entity_id: str) -> str:
    """A compact IdP label: the host of a URL entity ID (``idp.example.org``), else the ID shortened."""
    if not entity_id:
        return "-"
    host = urlparse(entity_id).hostname if "://" in entity_id else None
    if not host:
        return shortened(entity_id)
    return format_html('<span title="{}">{}</span>', entity_id, host)


class CompactColumnsMixin:
    """An ``idp`` column: the IdP's host, the whole entity ID in its tooltip."""

    @admin.display(description=_("identity provider"), ordering="idp_entity_id")
    def idp(self, obj: Any) -> str:
        return idp_label(obj.idp_entity_id)


_columns: dict[tuple[type[models.Model], str], Callable[[Any], str | None]] = {}


def _datetime_field(model: type[models.Model], name: Any) -> models.DateTimeField | None:
    if not isinstance(name, str):
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.DateTimeField) else None


def with_seconds(model: type[models.Model], name: Any) -> Any:
    """A model's datetime field ``name`` as a column shown with :data:`TIMESTAMP_FORMAT`; anything else as given.

    One column object per (model, field), so that ``fields`` and
    ``readonly_fields`` name the same one; sortable by the field.
    """
    field = _datetime_field(model, name)
    if field is None:
        return name
    key = (model, name)
    if key not in _columns:

        @admin.display(description=field.verbose_name, ordering=name)
        def column(obj: Any) -> str | None:
            return timestamp_html(getattr(obj, name))

        column.__name__ = name
        _columns[key] = column
    return _columns[key]


def _mapped(model: type[models.Model], names: Sequence[Any]) -> list[Any]:
    return [with_seconds(model, name) for name in names]


class SecondsMixin:
    """Shows the read-only timestamps of a saml_jit admin (list columns, change page, inline) with seconds.

    Django's ``DATETIME_FORMAT`` ("Dec. 1, 2026, 11:03 p.m.") drops them.
    Editable datetime fields keep their widgets.
    """

    model: type[models.Model]

    def get_list_display(self, request: HttpRequest) -> Any:
        return _mapped(self.model, super().get_list_display(request))  # type: ignore[misc]

    def get_list_display_links(self, request: HttpRequest, list_display: Sequence[Any]) -> Any:
        links = super().get_list_display_links(request, list_display)  # type: ignore[misc]
        return None if links is None else _mapped(self.model, links)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return _mapped(self.model, super().get_readonly_fields(request, obj))  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = set(self.get_readonly_fields(request, obj))
        fields = super().get_fields(request, obj)  # type: ignore[misc]
        return [column if (column := with_seconds(self.model, name)) in readonly else name for name in fields]
