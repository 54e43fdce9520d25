"""The user page: a person's identities, grants and recent events, and a managed-group filter.

saml_jit does not register a user admin; it extends whichever one is
registered (see :class:`SamlJitUserAdminMixin`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import FederatedIdentity, Grant, ProvisioningEvent
from .common import ReadOnlyAdminMixin, SecondsMixin
from .events import EventDisplayMixin
from .lifecycle import LifecycleInline

#: How many events the user page shows (the full list is one click away).
RECENT_EVENTS = 20


class IdentityInline(SecondsMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = FederatedIdentity
    fields = ("idp_entity_id", "subject", "name_id_format", "first_asserted_at", "last_asserted_at")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("federated identities")


class GrantInline(SecondsMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = Grant
    fk_name = "user"
    fields = ("kind", "group", "idp_entity_id", "granted_at", "last_asserted_at", "expires_at", "assertion_id")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("grants from SAML (managed memberships and privileges)")


class RecentEventsFormSet(BaseInlineFormSet):
    def get_queryset(self) -> QuerySet:
        return super().get_queryset()[:RECENT_EVENTS]


class RecentEventInline(SecondsMixin, EventDisplayMixin, ReadOnlyAdminMixin, admin.TabularInline):
    """The newest :data:`RECENT_EVENTS` events, each linked to its page; below them a link to all of them."""

    model = ProvisioningEvent
    formset = RecentEventsFormSet
    template = "admin/saml_jit/edit_inline/recent_events.html"
    fields = ("event_link", "created_at", "kind", "source", "idp_entity_id", "reason_code", "changes")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("recent provisioning events")

    @admin.display(description=_("reference"))
    def event_link(self, obj: ProvisioningEvent) -> str:
        url = reverse("admin:saml_jit_provisioningevent_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)


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


class SamlJitUserAdminMixin:
    """Adds identities and recent events to a user admin.

    saml_jit applies it to whatever admin is registered for the user model
    when its admin module loads; mix it in yourself if you register your user
    admin later.
    """

    saml_jit_inlines = (LifecycleInline, IdentityInline, GrantInline, RecentEventInline)

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
