"""Federated identities: reviewed and removed (unbinding), never edited."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import FederatedIdentity
from ..provisioning import accounts
from .common import NoAddChangeMixin, SecondsMixin, idp_label, shortened


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(SecondsMixin, NoAddChangeMixin, admin.ModelAdmin):
    """Identities can be reviewed and removed (unbinding), never edited."""

    # Subject and IdP in one cell, so that the timestamps stay in view at 1280 pixels.
    list_display = ("identity", "user", "last_asserted_at", "first_asserted_at", "bound_at")
    list_filter = ("idp_entity_id",)
    search_fields = ("=subject", f"user__{get_user_model().USERNAME_FIELD}", "=last_assertion_id")
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "idp_entity_id",
        "subject",
        "name_id_format",
        "bound_at",
        "first_asserted_at",
        "last_asserted_at",
        "last_assertion_id",
    )

    @admin.display(description=_("subject and identity provider"), ordering="subject")
    def identity(self, obj: FederatedIdentity) -> str:
        return format_html(
            '{}<br><small class="quiet">{}</small>', shortened(obj.subject, 20), idp_label(obj.idp_entity_id)
        )

    def delete_model(self, request: HttpRequest, obj: FederatedIdentity) -> None:
        # Unbinding is a decision: an event, and the person is told.
        accounts.unbind(obj, actor=request.user.get_username(), request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for identity in queryset.select_related("user"):
            accounts.unbind(identity, actor=request.user.get_username(), request=request)
