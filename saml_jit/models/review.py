"""Access review: campaigns and their decisions, holds on revoked access, reviews of privileged events.

Evidence for NIST SP 800-53 AC-2(j) (account reviews) and AC-2(4) (audit of
account actions): who reviewed what, when, with which outcome. Events stay
append-only: a review of an event is a row of its own.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH
from .events import ProvisioningEvent


class CampaignState(models.TextChoices):
    OPEN = "open", _("open")
    CLOSED = "closed", _("closed")


class Campaign(models.Model):
    """A review of who has what, within a scope; its decisions flow back as events.

    Reviewers are the users with the ``saml_jit.review_access`` permission;
    nobody decides on their own access. A closed campaign can no longer change.
    """

    name = models.CharField(_("name"), max_length=200)
    #: Only accounts with an identity from this IdP; blank: every account.
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    #: Only memberships of these groups (and, with ``include_privileges``, staff and superuser).
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="+", verbose_name=_("groups"))
    #: Only privileged access: staff, superuser, and groups that are privileged (``PRIVILEGED_GROUPS``).
    privileged_only = models.BooleanField(_("privileged access only"), default=False)
    state = models.CharField(_("state"), max_length=8, choices=CampaignState.choices, default=CampaignState.OPEN)
    opened_by = models.CharField(_("opened by"), max_length=150, blank=True)
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    closed_by = models.CharField(_("closed by"), max_length=150, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("access review campaign")
        verbose_name_plural = _("access review campaigns")
        ordering = ["-opened_at"]
        permissions = [("review_access", _("Can decide in access review campaigns"))]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.state == CampaignState.OPEN


class Decision(models.TextChoices):
    PENDING = "pending", _("pending")
    KEEP = "keep", _("keep")
    REVOKE = "revoke", _("revoke")


class AccessKind(models.TextChoices):
    GROUP = "group", _("group membership")
    STAFF = "staff", _("staff status")
    SUPERUSER = "superuser", _("superuser status")


class AccessSource(models.TextChoices):
    SAML = "saml", _("SAML grant")
    SCIM = "scim", _("SCIM group")
    MANUAL = "manual", _("manual")


class CampaignItem(models.Model):
    """One piece of access under review: a membership, staff or superuser of one account.

    Snapshots (username, group name, source, since) keep the evidence readable
    after the account or the group is gone.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items", verbose_name=_("campaign"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("user")
    )
    username = models.CharField(_("username"), max_length=255)
    kind = models.CharField(_("access"), max_length=16, choices=AccessKind.choices)
    group = models.ForeignKey(
        "auth.Group", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("group")
    )
    group_name = models.CharField(_("group name"), max_length=150, blank=True)
    source = models.CharField(_("source"), max_length=8, choices=AccessSource.choices)
    #: For a SAML grant: the IdP that granted it.
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    since = models.DateTimeField(_("held since"), null=True, blank=True)
    decision = models.CharField(_("decision"), max_length=8, choices=Decision.choices, default=Decision.PENDING)
    comment = models.TextField(_("comment"), blank=True)
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("review item")
        verbose_name_plural = _("review items")
        ordering = ["campaign_id", "username", "kind", "group_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "user", "kind", "group_name"], name="saml_jit_review_item_once"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "decision"], name="saml_jit_review_item_progress")]

    def __str__(self) -> str:
        what = self.group_name if self.kind == AccessKind.GROUP else self.get_kind_display()
        return f"{self.username}: {what}"


class AccessHold(models.Model):
    """Access a review revoked: a later login does not grant it again from that IdP until the hold is lifted.

    The IdP may still assert it (its assignment was not changed yet); the
    review's decision stands, and the login's event says the grant was held.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saml_holds", verbose_name=_("user")
    )
    #: Blank: every IdP.
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    kind = models.CharField(_("access"), max_length=16, choices=AccessKind.choices)
    group = models.ForeignKey(
        "auth.Group", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("group")
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.SET_NULL, null=True, blank=True, related_name="holds", verbose_name=_("campaign")
    )
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("access hold")
        verbose_name_plural = _("access holds")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} {self.group or ''}".strip()


class EventReview(models.Model):
    """A reviewer looked at an event that needed review (a privileged change, a link, a reactivation)."""

    event = models.OneToOneField(
        ProvisioningEvent, on_delete=models.CASCADE, related_name="review", verbose_name=_("event")
    )
    reviewed_by = models.CharField(_("reviewed by"), max_length=150)
    reviewed_at = models.DateTimeField(_("reviewed at"), default=timezone.now)
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        verbose_name = _("event review")
        verbose_name_plural = _("event reviews")
        ordering = ["-reviewed_at"]

    def __str__(self) -> str:
        return f"#{self.event_id} reviewed by {self.reviewed_by}"


class DailyEventCount(models.Model):
    """The dashboard's roll-up: events per day, kind, reason, IdP and source.

    Events are append-only, so a past day's counts never change (retention
    pruning aside): each is computed once, from the indexed events, the first
    time the dashboard needs it. Today is always counted live.
    """

    day = models.DateField(_("day"))
    kind = models.CharField(_("kind"), max_length=32)
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True)
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    source = models.CharField(_("source"), max_length=16, blank=True)
    count = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("daily event count")
        verbose_name_plural = _("daily event counts")
        ordering = ["-day"]
        indexes = [models.Index(fields=["day", "kind"], name="saml_jit_daily_day_kind")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.reason_code}: {self.count}"


class RolledUpDay(models.Model):
    """A day whose :class:`DailyEventCount` rows are complete."""

    day = models.DateField(_("day"), unique=True)
    rolled_up_at = models.DateTimeField(_("rolled up at"), default=timezone.now)

    class Meta:
        verbose_name = _("rolled-up day")
        verbose_name_plural = _("rolled-up days")

    def __str__(self) -> str:
        return str(self.day)


# ----------------------------------------------------------------------------
# Admin pages over existing rows (proxies: no tables of their own)


class AccessSnapshot(ProvisioningEvent):
    """Who has what, why and since when (an admin page and exports over accounts)."""

    class Meta:
        proxy = True
        verbose_name = _("access snapshot")
        verbose_name_plural = _("access snapshot")


class GovernanceDashboard(ProvisioningEvent):
    """The lifecycle and review dashboard (an admin page)."""

    class Meta:
        proxy = True
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")


class GovernanceReport(ProvisioningEvent):
    """Orphans, duplicates, review debt, ways around SSO (admin pages with exports)."""

    class Meta:
        proxy = True
        verbose_name = _("report")
        verbose_name_plural = _("reports")
