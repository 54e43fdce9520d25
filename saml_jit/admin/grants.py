"""Grants (managed memberships and privileges): reviewed, expired, or let go."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import Grant
from ..provisioning.grants import expire_grants
from .common import CompactColumnsMixin, NoAddChangeMixin, SecondsMixin, shortened


@admin.register(Grant)
class GrantAdmin(SecondsMixin, CompactColumnsMixin, NoAddChangeMixin, admin.ModelAdmin):
    """Grants are reviewed here; "expire now" takes one away at once.

    Deleting a grant row instead releases the membership to manual management:
    saml_jit will no longer remove it.
    """

    # Who holds what in one cell, so that the expiry stays in view at 1280 pixels.
    list_display = ("holder", "idp", "expires_at", "last_asserted_at", "granted_at")
    list_display_links = ("holder",)
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
        "authn_context",
        "expires_at",
    )
    actions = ["expire_now"]

    @admin.display(description=_("user and access"), ordering="user")
    def holder(self, grant: Grant) -> str:
        access = shortened(grant.group.name, 28) if grant.group is not None else grant.get_kind_display()
        return format_html('{}<br><small class="quiet">{}</small>', grant.user, access)

    @admin.action(description=_("Expire selected grants now"), permissions=["delete"])
    def expire_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        removed = expire_grants(grant_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(count)d grant(s) expired.") % {"count": removed})
