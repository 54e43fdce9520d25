"""Federated identities: reviewed and removed (unbinding), never edited."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import FederatedIdentity
from ..provisioning import accounts
from .common import NoAddChangeMixin, SecondsMixin


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(SecondsMixin, NoAddChangeMixin, admin.ModelAdmin):
    """Identities can be reviewed and removed (unbinding), never edited."""

    list_display = ("subject", "idp_entity_id", "user", "bound_at", "first_asserted_at", "last_asserted_at")
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

    def delete_model(self, request: HttpRequest, obj: FederatedIdentity) -> None:
        # Unbinding is a decision: an event, and the person is told.
        accounts.unbind(obj, actor=request.user.get_username(), request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for identity in queryset.select_related("user"):
            accounts.unbind(identity, actor=request.user.get_username(), request=request)
