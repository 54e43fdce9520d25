"""SCIM clients and the groups they manage.

Only the token helpers of :mod:`saml_jit.tokens` are used, not the SCIM
package, so this admin works without the ``scim`` extra.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .. import tokens
from ..models import ScimClient, ScimGroup
from .common import ReadOnlyAdminMixin, SecondsMixin


@admin.register(ScimClient)
class ScimClientAdmin(SecondsMixin, admin.ModelAdmin):
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
        token, obj.token_hash = tokens.new_token()
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            _("The bearer token of %(name)s, shown only now; copy it into the IdP: %(token)s")
            % {"name": obj.name, "token": token},
        )

    @admin.action(description=_("Revoke the tokens of the selected SCIM clients"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = tokens.revoke_active(queryset)
        self.message_user(request, _("%(count)d SCIM client(s) revoked.") % {"count": count})


@admin.register(ScimGroup)
class ScimGroupAdmin(SecondsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which Django groups an IdP manages over SCIM (read-only)."""

    list_display = ("group", "idp_entity_id", "external_id", "client", "created_at")
    list_filter = ("idp_entity_id",)
    list_select_related = ("group", "client")
    search_fields = ("group__name", "=external_id")
