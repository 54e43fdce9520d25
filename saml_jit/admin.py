"""The review UI: events (read-only, exportable), identities, and both on the user page."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Max, Min, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .conf import app_settings
from .grants import expire_grants
from .models import FederatedIdentity, Grant, ProvisioningEvent, ScimClient, ScimGroup

#: How many events the user page shows (the full list is one click away).
RECENT_EVENTS = 20

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


def pretty_json(value: Any) -> str:
    if not value:
        return "-"
    return format_html(
        "<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    )


class EstimatedCountPaginator(Paginator):
    """Pages through a large, append-only table without COUNT(*) on every load.

    Unfiltered, the count is the span of primary keys (two index look-ups;
    rolled-back inserts make it a slight over-estimate). Filtered, matches are
    counted up to ``CAP`` only, so a broad filter costs a bounded scan; past
    that the last pages are not offered.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        queryset = cast("QuerySet[Any]", self.object_list)  # the admin changelist pages a QuerySet
        if not queryset.query.where:
            # Two ordered look-ups: one MIN()+MAX() query makes SQLite scan the table.
            ids = queryset.model._default_manager.order_by().values_list("pk", flat=True)
            low, high = ids.order_by("pk").first(), ids.order_by("-pk").first()
            return 0 if low is None or high is None else high - low + 1
        return queryset.order_by()[: self.CAP].count()


class DateDrillDownQuerySet(QuerySet):
    """Serves the admin's date hierarchy from index look-ups.

    Django's ``date_hierarchy`` asks for ``Min``/``Max`` of the date in one
    query (SQLite then scans the table) and for ``datetimes(field, kind)``,
    a ``SELECT DISTINCT`` truncation over every matching row. On a table of
    millions of events both take seconds. Here the first and last dates come
    from two ordered look-ups on the indexed column, and the periods offered
    are every year, month or day between them (a period may be empty).
    """

    def _first_last(self, field: str) -> tuple[Any, Any]:
        dates = self.order_by().values_list(field, flat=True)
        return dates.order_by(field).first(), dates.order_by(f"-{field}").first()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        spans = {key: agg for key, agg in kwargs.items() if isinstance(agg, (Min, Max))}
        sources = {getattr(agg.get_source_expressions()[0], "name", None) for agg in spans.values()}
        if args or not spans or len(spans) != len(kwargs) or len(sources) != 1 or None in sources:
            return super().aggregate(*args, **kwargs)
        first, last = self._first_last(cast(str, sources.pop()))  # None in sources was ruled out above
        return {key: first if isinstance(agg, Min) else last for key, agg in spans.items()}

    def datetimes(self, field_name: str, kind: str, order: str = "ASC", tzinfo: Any = None) -> list[Any]:  # type: ignore[override]
        first, last = self._first_last(field_name)
        if first is None:
            return []
        return list(_periods(timezone.localtime(first), timezone.localtime(last), kind))


def _periods(first: datetime, last: datetime, kind: str) -> Iterator[datetime]:
    if kind == "year":
        for year in range(first.year, last.year + 1):
            yield first.replace(year=year, month=1, day=1)
    elif kind == "month":
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            yield first.replace(year=year, month=month, day=1)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    else:
        day = first.replace(hour=0, minute=0, second=0, microsecond=0)
        while day.date() <= last.date():
            yield day
            day += timedelta(days=1)


class ReadOnlyAdminMixin:
    """Append-only rows: nobody adds, changes or deletes them from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProvisioningEvent)
class ProvisioningEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "kind", "source", "username", "idp_entity_id", "subject", "reason_code", "actor")
    list_filter = ("kind", "source", IdPListFilter, "created_at")
    date_hierarchy = "created_at"
    search_fields = ("username", "=subject", "=assertion_id", "reason_code")
    list_select_related = False
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        queryset.__class__ = DateDrillDownQuerySet  # see its docstring
        return queryset

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

    @admin.display(description=_("changes"))
    def changes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.diff)

    @admin.display(description=_("attributes"))
    def asserted_attributes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.attributes)

    @admin.action(description=_("Export selected events as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="saml_jit_events.csv"'
        writer = csv.writer(response)
        writer.writerow(EXPORT_FIELDS)
        for row in queryset.values_list(*EXPORT_FIELDS).iterator():
            writer.writerow([_csv_cell(value) for value in row])
        return response

    @admin.action(description=_("Export selected events as JSON lines"), permissions=["view"])
    def export_json(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
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


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(admin.ModelAdmin):
    """Identities can be reviewed and removed (unbinding), never edited."""

    list_display = ("subject", "idp_entity_id", "user", "first_asserted_at", "last_asserted_at")
    list_filter = ("idp_entity_id",)
    search_fields = ("=subject", f"user__{get_user_model().USERNAME_FIELD}", "=last_assertion_id")
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "idp_entity_id",
        "subject",
        "name_id_format",
        "first_asserted_at",
        "last_asserted_at",
        "last_assertion_id",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IdentityInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FederatedIdentity
    fields = ("idp_entity_id", "subject", "name_id_format", "first_asserted_at", "last_asserted_at")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("federated identities")


class GrantInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Grant
    fk_name = "user"
    fields = ("kind", "group", "idp_entity_id", "granted_at", "last_asserted_at", "expires_at", "assertion_id")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("grants from SAML (managed memberships and privileges)")


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Grants are reviewed here; "expire now" takes one away at once.

    Deleting a grant row instead releases the membership to manual management:
    saml_jit will no longer remove it.
    """

    list_display = ("user", "kind", "group", "idp_entity_id", "granted_at", "last_asserted_at", "expires_at")
    list_filter = ("kind", "idp_entity_id", "group")
    search_fields = (f"user__{get_user_model().USERNAME_FIELD}", "group__name", "=assertion_id")
    list_select_related = ("user", "group")
    readonly_fields = (
        "user",
        "idp_entity_id",
        "kind",
        "group",
        "granted_at",
        "last_asserted_at",
        "assertion_id",
        "expires_at",
    )
    actions = ["expire_now"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Expire selected grants now"), permissions=["delete"])
    def expire_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        removed = expire_grants(grant_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(count)d grant(s) expired.") % {"count": removed})


class ManagedGroupFilter(admin.SimpleListFilter):
    """Users by group membership that saml_jit manages."""

    title = _("managed group (SAML)")
    parameter_name = "saml_group"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        groups = Grant.objects.filter(kind="group").order_by().values_list("group_id", "group__name").distinct()
        return [(str(pk), name) for pk, name in sorted(groups, key=lambda item: item[1])]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(saml_grants__kind="group", saml_grants__group_id=self.value()).distinct()
        return queryset


class RecentEventsFormSet(BaseInlineFormSet):
    def get_queryset(self) -> QuerySet:
        return super().get_queryset()[:RECENT_EVENTS]


class RecentEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ProvisioningEvent
    formset = RecentEventsFormSet
    fields = ("created_at", "kind", "source", "idp_entity_id", "reason_code", "changes")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("recent provisioning events")

    @admin.display(description=_("changes"))
    def changes(self, obj: ProvisioningEvent) -> str:
        return pretty_json(obj.diff)


class SamlJitUserAdminMixin:
    """Adds identities and recent events to a user admin.

    saml_jit applies it to whatever admin is registered for the user model
    when its admin module loads; mix it in yourself if you register your user
    admin later.
    """

    saml_jit_inlines = (IdentityInline, GrantInline, RecentEventInline)

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))  # type: ignore[misc]
        if obj is not None:
            inlines += [inline for inline in self.saml_jit_inlines if inline not in inlines]
        return inlines

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        filters = list(super().get_list_filter(request))  # type: ignore[misc]
        return [*filters, ManagedGroupFilter] if ManagedGroupFilter not in filters else filters


def _extend_user_admin(site: admin.AdminSite = admin.site) -> None:
    user_model = get_user_model()
    current = site._registry.get(user_model)
    if current is None or isinstance(current, SamlJitUserAdminMixin):
        return
    extended = type(type(current).__name__, (SamlJitUserAdminMixin, type(current)), {})
    site.unregister(user_model)
    site.register(user_model, extended)


_extend_user_admin()


# ----------------------------------------------------------------------------
# SCIM clients


@admin.register(ScimClient)
class ScimClientAdmin(admin.ModelAdmin):
    """SCIM clients: the token is shown once, in a message, when one is created.

    Only the name and the IdP are entered; the token hash is never shown.
    Revoking keeps the row (and its events) and refuses the token at once.
    """

    list_display = ("name", "idp_entity_id", "created_at", "last_used_at", "revoked")
    list_filter = ("revoked", "idp_entity_id")
    search_fields = ("name", "idp_entity_id")
    fields = ("name", "idp_entity_id", "created_at", "last_used_at", "revoked", "revoked_at")
    readonly_fields = ("created_at", "last_used_at", "revoked", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A client is bound to its IdP for life: rebinding would hand one
        # IdP's users to another. Create a new client instead.
        return (*self.readonly_fields, "name", "idp_entity_id") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ScimClient, form: Any, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        from .scim.auth import new_token

        token, obj.token_hash = new_token()
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            _("The bearer token of %(name)s, shown only now; copy it into the IdP: %(token)s")
            % {"name": obj.name, "token": token},
        )

    @admin.action(description=_("Revoke the tokens of the selected SCIM clients"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        from django.utils import timezone

        count = queryset.filter(revoked=False).update(revoked=True, revoked_at=timezone.now())
        self.message_user(request, _("%(count)d SCIM client(s) revoked.") % {"count": count})


@admin.register(ScimGroup)
class ScimGroupAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which Django groups an IdP manages over SCIM (read-only)."""

    list_display = ("group", "idp_entity_id", "external_id", "client", "created_at")
    list_filter = ("idp_entity_id",)
    list_select_related = ("group", "client")
    search_fields = ("group__name", "=external_id")
