"""The dashboard and the reports in the admin: pages over existing rows, behind their proxies' view permission.

* *Dashboard* (``saml_jit.view_governancedashboard``): the figures of
  :mod:`saml_jit.review.dashboard` — each a number linking to its filtered
  list — and its SVG charts, over 30 or 90 days (``?days=90``).
* *Reports* (``saml_jit.view_governancereport``): every report of
  :mod:`saml_jit.review.reports` with its count; one page per report (its
  rows, paginated) with CSV and JSON-lines exports.

The proxies are pages, not lists of rows: only their changelist URL (and the
report pages) exist, so the view permission on them never opens an event.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from ..models import GovernanceDashboard, GovernanceReport, ProvisioningEvent
from ..review import dashboard, reports
from ..review.exports import streamed

logger = logging.getLogger(__name__)

#: Rows per report page.
PER_PAGE = 100


class PageAdmin(admin.ModelAdmin):
    """A proxy that is a page: viewable with its view permission, nothing to add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _name(self, suffix: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{suffix}"

    def page_urls(self) -> list[URLPattern]:
        return []

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.changelist_view)
        return [*self.page_urls(), path("", view, name=self._name("changelist"))]

    def url(self, link: dashboard.Link) -> str:
        """The address of ``link`` on this admin site ("" when that page is not registered)."""
        try:
            address = reverse(f"{self.admin_site.name}:{link.name}", args=link.args)
        except NoReverseMatch:
            return ""
        return f"{address}?{urlencode(link.query)}" if link.query else address

    def context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **extra}


@admin.register(GovernanceDashboard)
class GovernanceDashboardAdmin(PageAdmin):
    template = "admin/saml_jit/governancedashboard/dashboard.html"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        window = _window(request.GET.get("days"))
        board = dashboard.build(window, url=self.url, recount=request.GET.get("recount") == "1")
        groups: dict[str, list[dashboard.Figure]] = {}
        for figure in board.figures:
            groups.setdefault(figure.group, []).append(figure)
        context = self.context(
            request,
            _("Dashboard"),
            board=board,
            groups=list(groups.items()),
            charts=[(spec.chart.title, mark_safe(spec.svg())) for spec in board.charts],  # noqa: S308 - escaped
            windows=[(days, days == board.window) for days in dashboard.WINDOWS],
            max_age=dashboard.ACCOUNT_COUNTS_MAX_AGE // 60,
            reports_url=self.url(dashboard.Link("saml_jit_governancereport_changelist")),
            **(extra_context or {}),
        )
        response = TemplateResponse(request, self.template, context)
        if board.recount_due:
            # Runs when the server closes the response, after the page has been sent (WSGI and ASGI
            # both call close()): the viewer gets the stale figures now, the next viewer fresh ones.
            response._resource_closers.append(dashboard.recount_after_response)  # type: ignore[attr-defined]
        return response


def _window(value: str | None) -> int:
    try:
        days = int(value or 0)
    except ValueError:
        return dashboard.WINDOWS[0]
    return days if days in dashboard.WINDOWS else dashboard.WINDOWS[0]


def _days(report: reports.Report, value: str | None) -> int | None:
    """The report's ``days`` parameter from the query string (1 to 3650), or its default."""
    if report.days is None:
        return None
    try:
        days = int(value or report.days)
    except ValueError:
        return report.days
    return min(max(days, 1), 3650)


@admin.register(GovernanceReport)
class GovernanceReportAdmin(PageAdmin):
    index_template = "admin/saml_jit/governancereport/index.html"
    report_template = "admin/saml_jit/governancereport/report.html"

    def page_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<slug:code>/", wrap(self.report_view), name=self._name("report")),
            path("<slug:code>/export/<slug:fmt>/", wrap(self.export_view), name=self._name("export")),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        counted = dashboard.account_counts(refresh=True)
        rows = [
            {
                "report": report,
                "count": counted.reports[report.code] if report.code in counted.reports else report.count(),
                "href": self.url(dashboard.Link(self._name("report"), args=(report.code,))),
            }
            for report in reports.REPORTS.values()
        ]
        context = self.context(request, _("Reports"), rows=rows, **(extra_context or {}))
        return TemplateResponse(request, self.index_template, context)

    def _report(self, request: HttpRequest, code: str) -> reports.Report:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = reports.get(code)
        if report is None:
            raise Http404(_("No such report."))
        return report

    def report_view(self, request: HttpRequest, code: str) -> HttpResponse:
        report = self._report(request, code)
        days = _days(report, request.GET.get("days"))
        with reports.planned_once():
            rows = report.rows(days=days)
            page = Paginator(rows if isinstance(rows, QuerySet) else list(rows), PER_PAGE).get_page(
                request.GET.get("p")
            )
            table = [self._cells(report, report.row(item)) for item in page.object_list]
        query = {"days": str(days)} if days is not None else {}
        exports = [
            (label, self.url(dashboard.Link(self._name("export"), query, (code, fmt))))
            for fmt, label in (("csv", _("CSV")), ("jsonl", _("JSON lines")))
        ]
        context = self.context(
            request,
            str(report.title),
            report=report,
            days=days,
            page=page,
            headings=[reports.FIELD_LABELS.get(name, name) for name in report.fields],
            table=table,
            exports=exports,
            query=urlencode(query),
            index_url=self.url(dashboard.Link(self._name("changelist"))),
        )
        return TemplateResponse(request, self.report_template, context)

    def _cells(self, report: reports.Report, row: dict[str, Any]) -> list[tuple[Any, str]]:
        """The row's values in field order, each with a link: the account's or the event's admin page."""
        links = {
            "username": _admin_change(self.admin_site.name, get_user_model(), row.get("user_id")),
            "event_id": _admin_change(self.admin_site.name, ProvisioningEvent, row.get("event_id")),
        }
        return [(_shown(row.get(name)), links.get(name, "")) for name in report.fields]

    def export_view(self, request: HttpRequest, code: str, fmt: str) -> StreamingHttpResponse:
        report = self._report(request, code)
        if fmt not in ("csv", "jsonl"):
            raise Http404(_("No such export format."))
        days = _days(report, request.GET.get("days"))
        logger.info("saml_jit report export report=%s format=%s by user id=%s", code, fmt, request.user.pk)
        return streamed((report.fields, report.export_rows(days=days)), fmt, f"saml_jit_{code}")


def _shown(value: Any) -> Any:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return value


def _admin_change(site: str, model: Any, pk: Any) -> str:
    if pk is None:
        return ""
    try:
        return reverse(f"{site}:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    except NoReverseMatch:
        return ""
