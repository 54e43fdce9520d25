"""The access snapshot in the admin: who has what, why and since when, one row per account.

Filters: IdP (an identity with it), group (a member), privileged only (staff,
superuser or a ``PRIVILEGED_GROUPS`` group). The page links CSV and JSON
lines downloads of the same filtered result, streamed
(:func:`saml_jit.review.exports.snapshot_rows`). It pages by primary key
(``?after=<pk>``): each page is one index range and a prefetch, however many
accounts come before it — no ``OFFSET`` scan over 100,000 accounts.

Seeing it needs the view permission on *access snapshot*
(``saml_jit.view_accesssnapshot``); the page changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBadRequest, QueryDict
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import AccessSnapshot, LifecycleSource, LifecycleState
from ..review import access
from ..review.exports import FORMATS, snapshot_rows, streamed
from .events import known_idps
from .exports import EXPORT_PARAM

logger = logging.getLogger(__name__)

PER_PAGE = 50
TEMPLATE = "admin/saml_jit/snapshot.html"
FILENAME = "saml_jit_access_snapshot"
CREATED_BY = {
    "jit": _("first SAML login (JIT)"),
    "scim": _("SCIM"),
    "admin": _("administrator"),
    "local": _("local (outside saml_jit)"),
}


@dataclass(frozen=True)
class Filters:
    idp: str = ""
    group: str = ""
    privileged_only: bool = False

    @classmethod
    def from_query(cls, query: QueryDict) -> Filters:
        return cls(query.get("idp", ""), query.get("group", ""), query.get("privileged") == "1")

    def accounts(self) -> QuerySet[Any]:
        return access.accounts(idp=self.idp, group=self.group, privileged_only=self.privileged_only)


@dataclass(frozen=True)
class Row:
    """One account as the page shows it."""

    account: access.AccountAccess
    state_label: str
    source_label: str
    created_by_label: str
    user_url: str


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    #: The ``after`` of the next page (None: this is the last), and of the previous one ("": the first page).
    next_after: Any
    previous_after: Any
    first: bool


@admin.register(AccessSnapshot)
class AccessSnapshotAdmin(admin.ModelAdmin):
    """One page (the changelist) and its downloads; nothing to add, change or delete."""

    list_per_page = PER_PAGE

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [path("", self.admin_site.admin_view(self.changelist_view), name="{}_{}_changelist".format(*info))]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponseBase:  # type: ignore[override]  # downloads stream
        if not self.has_view_permission(request):
            raise PermissionDenied
        filters = Filters.from_query(request.GET)
        if EXPORT_PARAM in request.GET:
            return self.export(request, filters, request.GET[EXPORT_PARAM])
        context = {
            **self.admin_site.each_context(request),
            **self.page_context(request, filters),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, TEMPLATE, context)

    def export(self, request: HttpRequest, filters: Filters, fmt: str) -> HttpResponseBase:
        if fmt not in FORMATS:
            return HttpResponseBadRequest(gettext("Unknown export format: choose CSV or JSON lines."))
        logger.info("Access snapshot export (%s) by user id=%s", fmt, getattr(request.user, "pk", None))
        return streamed(snapshot_rows(filters.accounts(), fmt), fmt, FILENAME)

    def page_context(self, request: HttpRequest, filters: Filters) -> dict[str, Any]:
        users = filters.accounts()
        page = keyset_page(users, _after(request.GET.get("after")), self._user_url, self.list_per_page)
        return {
            "title": gettext("Access snapshot"),
            "opts": self.opts,
            "filters": filters,
            "idps": known_idps(),
            "groups": list(Group.objects.order_by("name").values_list("name", flat=True)),
            "page": page,
            "total": users.count(),
            "next_query": _query(request.GET, after=page.next_after) if page.next_after is not None else "",
            "previous_query": _query(request.GET, after=page.previous_after) if not page.first else "",
            "export_links": [(fmt, _query(request.GET, after="", **{EXPORT_PARAM: fmt})) for fmt in FORMATS],
        }

    def _user_url(self, pk: Any) -> str:
        opts = get_user_model()._meta
        try:
            return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[pk])
        except NoReverseMatch:  # the user model is not in this admin site
            return ""


def keyset_page(users: QuerySet[Any], after: Any, user_url: Callable[[Any], str], size: int = PER_PAGE) -> Page:
    """The ``size`` accounts of ``users`` after primary key ``after`` (None: from the first)."""
    window = users if after is None else users.filter(pk__gt=after)
    accounts = list(islice(access.snapshot(window, batch=size + 1), size + 1))
    next_after = accounts[size - 1].user_id if len(accounts) > size else None
    states, sources = dict(LifecycleState.choices), dict(LifecycleSource.choices)
    rows = [
        Row(
            account,
            str(states.get(account.state, account.state)),
            str(sources.get(account.state_source, account.state_source)),
            str(CREATED_BY.get(account.created_by, account.created_by)),
            user_url(account.user_id),
        )
        for account in accounts[:size]
    ]
    return Page(rows, next_after, _previous(users, after, size), after is None)


def _previous(users: QuerySet[Any], after: Any, size: int) -> Any:
    """The ``after`` of the page before the one starting after ``after``: "" when that is the first page."""
    if after is None:
        return None
    earlier = list(users.filter(pk__lte=after).order_by("-pk").values_list("pk", flat=True)[: size + 1])
    return earlier[size] if len(earlier) > size else ""


def _after(value: str | None) -> Any:
    if not value:
        return None
    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None  # a mangled link: start from the first page


def _query(query: QueryDict, **changes: Any) -> str:
    params = query.copy()
    for name, value in changes.items():
        if value in ("", None):
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + params.urlencode()
