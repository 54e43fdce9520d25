"""Federated identities: reviewed and removed (unbinding), never edited."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model

from ..models import FederatedIdentity
from .common import NoAddChangeMixin


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(NoAddChangeMixin, admin.ModelAdmin):
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
