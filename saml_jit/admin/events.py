"""Provisioning events: read-only, filterable, exportable, fast on a large table.

Every event has a reference, ``#<id>``: error pages show it to the person who
was refused, and the event list shows it, links it and finds it (a search for
``#123`` is a primary-key look-up; ``123`` also searches the other fields).
The list downloads as CSV or JSON lines — the whole filtered result, streamed
(the links above the list), or the selected rows (the actions).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..models import EventReview, FederatedIdentity, ProvisioningEvent
from ..review.exports import FORMATS
from .common import ReadOnlyAdminMixin, SecondsMixin, idp_label, pretty_json, shortened
from .dry_run import DryRunMixin, has_dry_run_permission
from .exports import EXPORT_PARAM, csv_export, event_export, export_links, json_lines_export, without_export
from .large_tables import DateDrillDownQuerySet, EstimatedCountPaginator
from .review import mark_reviewed

REFERENCE = re.compile(r"^(#?)(\d{1,18})$")  # 18 digits: always within a 64-bit primary key


def known_idps() -> list[str]:
    """IdPs from settings and from identities, sorted (an index look-up, not a scan of the events)."""
    known = set(app_settings.IDPS)
    known.update(FederatedIdentity.objects.values_list("idp_entity_id", flat=True).distinct())
    return sorted(known)


def reference_number(term: str) -> tuple[int, bool] | None:
    """``"#123"`` → ``(123, True)``, ``"123"`` → ``(123, False)``, anything else → None."""
    match = REFERENCE.match(term.strip())
    if match is None:
        return None
    return int(match.group(2)), bool(match.group(1))


class IdPListFilter(admin.SimpleListFilter):
    """IdPs known from settings and identities.

    Cheaper than ``list_filter = ["idp_entity_id"]``, which runs a DISTINCT over
    the whole event table on every page load.
    """

    title = _("identity provider")
    parameter_name = "idp"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(entity_id, entity_id) for entity_id in known_idps()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(idp_entity_id=self.value())
        return queryset


class ReviewListFilter(admin.SimpleListFilter):
    """Events that need review: not yet reviewed (the review debt), or reviewed."""

    title = _("review")
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("due", _("Needs review")), ("done", _("Reviewed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "due":
            return queryset.filter(review_required=True, review__isnull=True)
        if self.value() == "done":
            return queryset.filter(review__isnull=False)
        return queryset


class EventDisplayMixin:
    """The JSON columns of an event, readable (on the event page and the user page)."""

    @admin.display(description=_("changes"))
    def changes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.diff)

    @admin.display(description=_("attributes"))
    def asserted_attributes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.attributes)

    @admin.display(description=_("reference"), ordering="pk")
    def reference(self, obj: ProvisioningEvent) -> str:
        return f"#{obj.pk}"

    @admin.display(description=_("review"))
    def review_status(self, obj: ProvisioningEvent) -> str:
        """Who reviewed the event and when, or that it still needs review (the review debt)."""
        review = EventReview.objects.filter(event_id=obj.pk).first()
        if review is not None:
            return gettext("Reviewed by %(who)s at %(when)s") % {
                "who": review.reviewed_by,
                "when": date_format(timezone.localtime(review.reviewed_at), "DATETIME_FORMAT"),
            }
        return gettext("Needs review: not reviewed yet") if obj.review_required else gettext("No review needed")


@admin.register(ProvisioningEvent)
class ProvisioningEventAdmin(DryRunMixin, SecondsMixin, EventDisplayMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    # Eight columns in the width the admin leaves at 1280 pixels (navigation
    # and filters open): kind and source, and the account with its identity,
    # share a cell; long values are shortened, whole in their tooltip.
    list_display = ("number", "created_at", "what", "who", "reason", "by")
    list_display_links = ("number", "created_at")
    list_filter = ("kind", "source", IdPListFilter, ReviewListFilter, "created_at")
    date_hierarchy = "created_at"
    search_fields = ("username", "=subject", "=assertion_id", "reason_code")
    search_help_text = _(
        "A reference (#123) finds that event; otherwise a part of the username, "
        "or an exact subject, assertion ID or reason code."
    )
    list_select_related = False
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    change_list_template = "admin/saml_jit/events_change_list.html"
    actions = ["export_csv", "export_json", mark_reviewed]
    fields = (
        "reference",
        "created_at",
        "kind",
        "source",
        "actor",
        "user",
        "username",
        "idp_entity_id",
        "subject",
        "assertion_id",
        "reason_code",
        "message",
        "changes",
        "asserted_attributes",
        "authn",
        "ip_address",
        "user_agent",
        "review_status",
    )
    readonly_fields = fields

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("saml_jit.review_access")

    @admin.display(description="#", ordering="pk")
    def number(self, obj: ProvisioningEvent) -> str:
        return f"#{obj.pk}"

    @admin.display(description=_("kind"), ordering="kind")
    def what(self, obj: ProvisioningEvent) -> str:
        return format_html('{}<br><small class="quiet">{}</small>', obj.get_kind_display(), obj.get_source_display())

    @admin.display(description=_("account and identity"), ordering="username")
    def who(self, obj: ProvisioningEvent) -> str:
        identity = ""
        if obj.idp_entity_id or obj.subject:
            identity = format_html("{} &middot; {}", idp_label(obj.idp_entity_id), shortened(obj.subject, 14))
        return format_html('{}<br><small class="quiet">{}</small>', shortened(obj.username, 16), identity)

    @admin.display(description=_("reason"), ordering="reason_code")
    def reason(self, obj: ProvisioningEvent) -> str:
        # Whole (codes are short words), wrapping only after an underscore.
        return format_html_join(mark_safe("_<wbr>"), "{}", ((part,) for part in obj.reason_code.split("_")))

    @admin.display(description=_("actor"), ordering="actor")
    def by(self, obj: ProvisioningEvent) -> str:
        return shortened(obj.actor, 14) if obj.actor else ""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        queryset.__class__ = DateDrillDownQuerySet  # see its docstring
        return queryset

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """``#123`` is event 123 (a primary-key look-up); ``123`` is event 123 or a match of the search fields."""
        reference = reference_number(search_term)
        if reference is None:
            return super().get_search_results(request, queryset, search_term)
        number, explicit = reference
        if explicit:
            return queryset.filter(pk=number), False
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return found | queryset.filter(pk=number), may_have_duplicates

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponseBase:  # type: ignore[override]  # downloads stream
        if EXPORT_PARAM in request.GET:
            return self.export_filtered(request)
        links = export_links(request.GET) if self.has_view_permission(request) else []
        dry_run_url = reverse("admin:saml_jit_provisioningevent_dry_run") if has_dry_run_permission(request) else ""
        context = {**(extra_context or {}), "export_links": links, "dry_run_url": dry_run_url}
        return super().changelist_view(request, context)

    def export_filtered(self, request: HttpRequest) -> HttpResponseBase:
        """The whole filtered, searched changelist result (every page), streamed."""
        fmt = request.GET.get(EXPORT_PARAM, "")
        if fmt not in FORMATS:
            return HttpResponseBadRequest(gettext("Unknown export format: choose CSV or JSON lines."))
        if not self.has_view_permission(request):
            raise PermissionDenied
        request.GET = without_export(request.GET)  # type: ignore[assignment]  # immutable, as Django's own
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return event_export(request, changelist.get_queryset(request), fmt)

    @admin.action(description=_("Export selected events as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase:
        return csv_export(request, queryset)

    @admin.action(description=_("Export selected events as JSON lines"), permissions=["view"])
    def export_json(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase:
        return json_lines_export(request, queryset)
