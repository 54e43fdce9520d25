"""Dormancy in the admin: a list filter by age of the last IdP evidence, and a "suspend as dormant" action.

Both work on :class:`~saml_jit.models.AccountLifecycle` changelists (the
lifecycle admin wires them in). The evidence is the sweep's
(:mod:`saml_jit.provisioning.dormancy`): the last assertion of each identity
(its binding, if never asserted) and the last SCIM touch — never
``last_login``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import lifecycle as rules
from ..provisioning import dormancy, lifecycle

#: The filter's choices, in days.
EVIDENCE_AGES = (30, 90, 180, 365)
#: The event message of an administrator's dormant suspension (the actor field says who).
MESSAGE = "dormant: suspended by an administrator"


class EvidenceAgeFilter(admin.SimpleListFilter):
    """Accounts bound to an IdP with no evidence from any IdP for more than N days (whatever their state).

    The sweep also needs the account to be ``active`` and its state older
    than the cut-off; this filter shows the evidence alone.
    """

    title = _("no IdP evidence for more than")
    parameter_name = "no_evidence_days"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(days), ngettext("%(days)d day", "%(days)d days", days) % {"days": days}) for days in EVIDENCE_AGES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        cutoff = timezone.now() - timedelta(days=int(value))
        return queryset.filter(dormancy.no_evidence_since(cutoff), dormancy.bound_to())


@admin.action(description=_("Suspend selected accounts (dormant)"), permissions=["manage_lifecycle"])
def suspend_dormant(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    """Suspend the selected active accounts as the sweep would: a later SAML login may reactivate them.

    The source is ``dormancy`` (what lets ``REACTIVATE_DORMANT`` apply); the
    administrator is the event's actor. Pages of :data:`dormancy.BATCH`, each
    in its own transaction.
    """
    context = lifecycle.Context(actor=request.user.get_username(), request=request, message=MESSAGE)
    users = get_user_model()._default_manager
    selected = suspended = 0
    for ids in dormancy.pages(queryset, dormancy.BATCH):
        decisions = lifecycle.transition_many(list(users.filter(pk__in=ids).order_by("pk")), rules.DORMANT, context)
        selected += len(ids)
        suspended += sum(decision.changes for decision in decisions)
    text = ngettext("%(count)d account suspended as dormant.", "%(count)d accounts suspended as dormant.", suspended)
    modeladmin.message_user(request, text % {"count": suspended}, messages.SUCCESS)
    if suspended < selected:
        left = _("%(count)d selected account(s) were left as they were: only active accounts can become dormant.")
        modeladmin.message_user(request, left % {"count": selected - suspended}, messages.WARNING)
