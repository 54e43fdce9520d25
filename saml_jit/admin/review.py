"""Access review in the admin: campaigns, their items, holds, and reviews of privileged events.

Deciding needs ``saml_jit.review_access`` and is refused on one's own access
(:func:`saml_jit.review.campaigns.decide` enforces both); a closed campaign
is read-only and exports its evidence.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import AccessHold, Campaign, CampaignItem, Decision, EventReview, ProvisioningEvent
from ..review import campaigns
from ..review.exports import campaign_rows, streamed
from .common import NoAddChangeMixin, SecondsMixin

REFUSALS = {
    "own_access": _("Nobody decides on their own access: another reviewer has to."),
    "not_a_reviewer": _("Deciding needs the permission to review access (saml_jit.review_access)."),
    "campaign_closed": _("The campaign is closed; its decisions can no longer change."),
}


@admin.register(Campaign)
class CampaignAdmin(SecondsMixin, admin.ModelAdmin):
    list_display = ("name", "state", "scope", "progress", "opened_by", "opened_at", "due_at", "closed_at")
    list_filter = ("state",)
    fields = ("name", "idp_entity_id", "groups", "privileged_only", "due_at")
    filter_horizontal = ("groups",)
    actions = ["close", "export_csv", "export_json"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # the scope is fixed once opened

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        data = form.cleaned_data
        opened = campaigns.open_campaign(
            data["name"],
            actor=request.user.get_username(),
            idp_entity_id=data.get("idp_entity_id") or "",
            groups=data.get("groups") or (),
            privileged_only=bool(data.get("privileged_only")),
            due_at=data.get("due_at"),
        )
        obj.pk, obj.state, obj.opened_at = opened.pk, opened.state, opened.opened_at

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # open_campaign set the groups

    @admin.display(description=_("scope"))
    def scope(self, campaign: Campaign) -> str:
        parts = [campaign.idp_entity_id or str(_("every IdP"))]
        names = [group.name for group in campaign.groups.all()]
        parts.append(", ".join(names) if names else str(_("every group")))
        if campaign.privileged_only:
            parts.append(str(_("privileged only")))
        return " · ".join(parts)

    @admin.display(description=_("progress"))
    def progress(self, campaign: Campaign) -> str:
        done = campaigns.progress(campaign)
        url = reverse("admin:saml_jit_campaignitem_changelist") + f"?campaign__id__exact={campaign.pk}"
        return format_html(
            '<a href="{}">{}/{} ({}%)</a> · {} kept · {} revoked',
            url,
            done.decided,
            done.total,
            done.percent,
            done.kept,
            done.revoked,
        )

    @admin.action(description=_("Close the selected campaigns"), permissions=["review"])
    def close(self, request: HttpRequest, queryset: QuerySet) -> None:
        closed = 0
        for campaign in queryset.filter(state="open"):
            campaigns.close(campaign, actor=request.user.get_username())
            closed += 1
        self.message_user(
            request, ngettext("%(n)d campaign closed.", "%(n)d campaigns closed.", closed) % {"n": closed}
        )

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("saml_jit.review_access")

    @admin.action(description=_("Export the evidence of the selected campaigns as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return streamed(campaign_rows(queryset), "csv", "saml_jit_review_evidence")

    @admin.action(description=_("Export the evidence of the selected campaigns as JSON lines"), permissions=["view"])
    def export_json(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return streamed(campaign_rows(queryset), "jsonl", "saml_jit_review_evidence")


def _decide_selected(modeladmin: Any, request: HttpRequest, queryset: QuerySet, decision: str) -> None:
    done, refused = 0, dict[str, int]()
    for item in queryset.filter(campaign__state="open"):
        try:
            campaigns.decide(item, decision, reviewer=request.user, request=request)
            done += 1
        except campaigns.ReviewRefused as refusal:
            refused[refusal.code] = refused.get(refusal.code, 0) + 1
    modeladmin.message_user(request, ngettext("%(n)d item decided.", "%(n)d items decided.", done) % {"n": done})
    for code, count in refused.items():
        modeladmin.message_user(request, f"{REFUSALS[code]} ({count})", messages.WARNING)


@admin.register(CampaignItem)
class CampaignItemAdmin(SecondsMixin, admin.ModelAdmin):
    """One piece of access under review; reviewers decide here (keep or revoke, with a comment)."""

    list_display = ("username", "access", "source", "idp_entity_id", "since", "decision", "decided_by", "decided_at")
    list_filter = ("campaign", "decision", "kind", "source")
    search_fields = ("username", "group_name")
    fields = ("campaign", "username", "kind", "group_name", "source", "idp_entity_id", "since", "decision", "comment")
    readonly_fields = ("campaign", "username", "kind", "group_name", "source", "idp_entity_id", "since")
    actions = ["keep", "revoke"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not request.user.has_perm("saml_jit.review_access"):
            return False
        return obj is None or (obj.campaign.is_open and obj.user_id != request.user.pk)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("saml_jit.review_access")

    def save_model(self, request: HttpRequest, obj: CampaignItem, form: Any, change: bool) -> None:
        decision = form.cleaned_data["decision"]
        if decision == Decision.PENDING:
            return
        try:
            campaigns.decide(
                obj, decision, reviewer=request.user, comment=form.cleaned_data["comment"], request=request
            )
        except campaigns.ReviewRefused as refusal:
            self.message_user(request, REFUSALS[refusal.code], messages.ERROR)

    @admin.display(description=_("access"))
    def access(self, item: CampaignItem) -> str:
        return item.group_name if item.kind == "group" else item.get_kind_display()

    @admin.action(description=_("Keep the selected access"), permissions=["review"])
    def keep(self, request: HttpRequest, queryset: QuerySet) -> None:
        _decide_selected(self, request, queryset, Decision.KEEP)

    @admin.action(description=_("Revoke the selected access"), permissions=["review"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        _decide_selected(self, request, queryset, Decision.REVOKE)


@admin.register(AccessHold)
class AccessHoldAdmin(SecondsMixin, NoAddChangeMixin, admin.ModelAdmin):
    """Access a review revoked; deleting a hold lets the IdP grant it again at the next login."""

    list_display = ("user", "kind", "group", "idp_entity_id", "campaign", "created_by", "created_at")
    list_filter = ("kind",)
    list_select_related = ("user", "group", "campaign")

    def delete_model(self, request: HttpRequest, obj: AccessHold) -> None:
        campaigns.lift_hold(obj, actor=request.user.get_username(), request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for hold in queryset.select_related("user", "group"):
            campaigns.lift_hold(hold, actor=request.user.get_username(), request=request)


@admin.action(description=_("Mark the selected events reviewed"), permissions=["review"])
def mark_reviewed(modeladmin: Any, request: HttpRequest, queryset: QuerySet[ProvisioningEvent]) -> None:
    """Review the selected events that need it; never one about the reviewer's own account.

    Two reviewers marking the same event at once: the review is one-to-one
    with its event, so the second insert is ignored and the first reviewer's
    name stands; each is told only the reviews they recorded.
    """
    due = queryset.filter(review_required=True, review__isnull=True)
    own = request.user.pk or 0
    reviewer, now = request.user.get_username(), timezone.now()
    ids = list(due.exclude(user_id=own).values_list("pk", flat=True))
    EventReview.objects.bulk_create(
        [EventReview(event_id=pk, reviewed_by=reviewer, reviewed_at=now) for pk in ids], ignore_conflicts=True
    )
    done = EventReview.objects.filter(event_id__in=ids, reviewed_by=reviewer, reviewed_at=now).count()
    modeladmin.message_user(request, ngettext("%(n)d event reviewed.", "%(n)d events reviewed.", done) % {"n": done})
    if due.filter(user_id=own).exists():
        modeladmin.message_user(request, REFUSALS["own_access"], messages.WARNING)
