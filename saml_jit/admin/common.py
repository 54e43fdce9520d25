"""What every saml_jit admin shares: read-only permissions and JSON display."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html


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
