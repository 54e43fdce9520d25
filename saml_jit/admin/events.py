"""Provisioning events: read-only, filterable, exportable, fast on a large table."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..models import FederatedIdentity, ProvisioningEvent
from .common import ReadOnlyAdminMixin, pretty_json
from .exports import csv_export, json_lines_export
from .large_tables import DateDrillDownQuerySet, EstimatedCountPaginator


class IdPListFilter(admin.SimpleListFilter):
    """IdPs known from settings and identities.

    Cheaper than ``list_filter = ["idp_entity_id"]``, which runs a DISTINCT over
    the whole event table on every page load.
    """

    title = _("identity provider")
    parameter_name = "idp"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        known = set(app_settings.IDPS)
        known.update(FederatedIdentity.objects.values_list("idp_entity_id", flat=True).distinct())
        return [(entity_id, entity_id) for entity_id in sorted(known)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(idp_entity_id=self.value())
        return queryset


class EventDisplayMixin:
    """The JSON columns of an event, readable (on the event page and the user page)."""

    @admin.display(description=_("changes"))
    def changes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.diff)

    @admin.display(description=_("attributes"))
    def asserted_attributes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.attributes)


@admin.register(ProvisioningEvent)
class ProvisioningEventAdmin(EventDisplayMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "source", "username", "idp_entity_id", "subject", "reason_code", "actor")
    list_filter = ("kind", "source", IdPListFilter, "created_at")
    date_hierarchy = "created_at"
    search_fields = ("username", "=subject", "=assertion_id", "reason_code")
    list_select_related = False
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["export_csv", "export_json"]
    fields = (
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
        "ip_address",
        "user_agent",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        queryset.__class__ = DateDrillDownQuerySet  # see its docstring
        return queryset

    @admin.action(description=_("Export selected events as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return csv_export(queryset)

    @admin.action(description=_("Export selected events as JSON lines"), permissions=["view"])
    def export_json(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        return json_lines_export(queryset)
