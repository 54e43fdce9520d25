"""Account lifecycles: the state of every account, the approval queue, and the actions that change them.

Every action goes through :func:`saml_jit.provisioning.lifecycle.transition_many`
— the one function a SAML login, SCIM and the dormancy sweep use too — and
records the administrator as the event's actor. The actions need the
``saml_jit.manage_lifecycle`` permission; rows are never edited by hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Max, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import lifecycle as rules
from ..models import AccountLifecycle, PendingAccount
from ..provisioning import lifecycle
from .common import NoAddChangeMixin, SecondsMixin, timestamp
from .dormancy import EvidenceAgeFilter, suspend_dormant

_USERNAME = f"user__{get_user_model().USERNAME_FIELD}"

#: Action name -> (trigger, past tense for the message).
ACTIONS = {
    "approve": (rules.ADMIN_APPROVE, _("approved")),
    "reject": (rules.ADMIN_REJECT, _("rejected")),
    "suspend": (rules.ADMIN_SUSPEND, _("suspended")),
    "deprovision": (rules.ADMIN_DEPROVISION, _("deprovisioned")),
    "reactivate": (rules.ADMIN_REACTIVATE, _("reactivated")),
}


def run_action(modeladmin: Any, request: HttpRequest, queryset: QuerySet, name: str) -> None:
    """Apply the lifecycle trigger of action ``name`` to the selected accounts, as ``request.user``."""
    trigger, done = ACTIONS[name]
    users = [row.user for row in queryset.select_related("user")]
    context = lifecycle.Context(actor=request.user.get_username(), request=request)
    changed = sum(decision.changes for decision in lifecycle.transition_many(users, trigger, context))
    text = ngettext("%(count)d account %(done)s.", "%(count)d accounts %(done)s.", changed)
    modeladmin.message_user(request, text % {"count": changed, "done": done}, messages.SUCCESS)
    if changed < len(users):
        unchanged = _("%(count)d selected account(s) were left as they were: the action does not apply to their state.")
        modeladmin.message_user(request, unchanged % {"count": len(users) - changed}, messages.WARNING)


def _action(name: str, description: Any) -> Any:
    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
        run_action(modeladmin, request, queryset, name)

    action.__name__ = name
    return admin.action(description=description, permissions=["manage_lifecycle"])(action)


approve = _action("approve", _("Approve the selected accounts"))
reject = _action("reject", _("Reject the selected accounts (deprovision)"))
suspend = _action("suspend", _("Suspend the selected accounts"))
deprovision = _action("deprovision", _("Deprovision the selected accounts"))
reactivate = _action("reactivate", _("Reactivate the selected accounts"))


class LifecycleAdminMixin(SecondsMixin, NoAddChangeMixin, admin.ModelAdmin):
    """Read-only rows, actions for those with ``saml_jit.manage_lifecycle``."""

    list_select_related = ("user",)
    search_fields = (_USERNAME,)

    def has_manage_lifecycle_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("saml_jit.manage_lifecycle")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an account's lifecycle goes with the account

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(last_asserted=Max("user__saml_identities__last_asserted_at"))

    @admin.display(description=_("last IdP evidence"))
    def last_evidence(self, row: Any) -> Any:
        found = [moment for moment in (getattr(row, "last_asserted", None), row.last_scim_at) if moment]
        return timestamp(max(found)) if found else "-"


@admin.register(AccountLifecycle)
class AccountLifecycleAdmin(LifecycleAdminMixin):
    list_display = ("user", "state", "since", "reason_code", "source", "actor", "created_by", "last_evidence")
    list_filter = ("state", "source", "created_by", EvidenceAgeFilter)
    date_hierarchy = "since"
    fields = ("user", "state", "since", "reason_code", "source", "actor", "created_by", "last_scim_at", "last_evidence")
    readonly_fields = fields
    actions = [approve, reject, suspend, deprovision, reactivate, suspend_dormant]


@admin.register(PendingAccount)
class PendingAccountAdmin(LifecycleAdminMixin):
    """The approval queue: accounts a first login created while ``NEW_USERS_ACTIVE`` is off, oldest first."""

    list_display = ("user", "waiting", "since", "created_by", "identities")
    fields = ("user", "state", "since", "reason_code", "created_by", "identities")
    readonly_fields = fields
    ordering = ("since",)
    actions = [approve, reject]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(state=rules.PENDING)

    @admin.display(description=_("waiting"), ordering="since")
    def waiting(self, row: AccountLifecycle) -> str:
        days = (timezone.now() - row.since).days
        return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}

    @admin.display(description=_("identities"))
    def identities(self, row: AccountLifecycle) -> str:
        return ", ".join(str(identity) for identity in row.user.saml_identities.all()) or "-"


class LifecycleInline(SecondsMixin, NoAddChangeMixin, admin.StackedInline):
    """The account's lifecycle state on the user page."""

    model = AccountLifecycle
    fields = ("state", "since", "reason_code", "source", "actor", "created_by", "last_scim_at")
    readonly_fields = fields
    can_delete = False
    extra = 0
    verbose_name_plural = _("lifecycle")
