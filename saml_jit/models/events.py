"""Provisioning events: the append-only audit row every decision leaves."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH


class EventKind(models.TextChoices):
    CREATED = "created", _("created")
    LINKED = "linked", _("linked")
    UPDATED = "updated", _("updated")
    LOGIN = "login", _("login")
    DENIED = "denied", _("denied")
    REJECTED = "rejected", _("rejected")
    DEACTIVATED = "deactivated", _("deprovisioned")
    REACTIVATED = "reactivated", _("reactivated")
    SUSPENDED = "suspended", _("suspended")
    APPROVED = "approved", _("approved")
    UNLINKED = "unlinked", _("identity unlinked")
    REVIEWED = "reviewed", _("access reviewed")
    EXPIRED = "expired", _("privilege expired")
    GROUPS_CHANGED = "groups_changed", _("groups changed")
    DELETED = "deleted", _("deleted")
    TOKEN_REFUSED = "token_refused", _("SCIM token refused")
    LOGOUT = "logout", _("logout")


#: Event kinds that use an assertion up: the login it admitted, or its
#: refusal by policy. At most one such event per (IdP, assertion ID): that
#: row is the replay record (see :mod:`saml_jit.provisioning.replay`).
ASSERTION_CONSUMING_KINDS = (
    EventKind.CREATED,
    EventKind.LINKED,
    EventKind.UPDATED,
    EventKind.LOGIN,
    EventKind.DENIED,
)


class EventSource(models.TextChoices):
    SAML = "saml", _("SAML")
    SCIM = "scim", _("SCIM")
    ADMIN = "admin", _("admin")
    DORMANCY = "dormancy", _("dormancy")
    SYSTEM = "system", _("system")


class ProvisioningEvent(models.Model):
    """One provisioning decision. Append-only; written by ``events.record``.

    The username is snapshotted so the row still says who it was about after
    the user is deleted (the foreign key is then set to NULL).
    """

    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    kind = models.CharField(_("kind"), max_length=32, choices=EventKind.choices)
    source = models.CharField(_("source"), max_length=16, choices=EventSource.choices, default=EventSource.SAML)
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    subject = models.CharField(_("subject"), max_length=SUBJECT_MAX_LENGTH, blank=True)
    assertion_id = models.CharField(_("assertion ID"), max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="saml_events",
        verbose_name=_("user"),
    )
    username = models.CharField(_("username"), max_length=255, blank=True)
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True)
    message = models.TextField(_("message"), blank=True)
    diff = models.JSONField(_("changes"), default=dict, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    #: How the person authenticated at the IdP, on SAML login events: the AuthnContextClassRef
    #: (``context_class``), the AuthnInstant (``instant``) and Entra's authnmethodsreferences (``methods``).
    authn = models.JSONField(_("authentication"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    #: Who made the change when it was not the person signing in: the SCIM
    #: client's name for SCIM changes.
    actor = models.CharField(_("actor"), max_length=100, blank=True)
    #: A privileged change, a link or a reactivation: someone should look at it
    #: (its :class:`~saml_jit.models.EventReview` says who did, and when).
    review_required = models.BooleanField(_("needs review"), default=False)

    class Meta:
        verbose_name = _("provisioning event")
        verbose_name_plural = _("provisioning events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["kind", "-created_at"], name="saml_jit_event_kind_time"),
            models.Index(fields=["idp_entity_id", "subject"], name="saml_jit_event_identity"),
            models.Index(fields=["assertion_id"], name="saml_jit_event_assertion"),
            # Review debt: the (few) events that need review, by age.
            models.Index(
                fields=["created_at"], condition=models.Q(review_required=True), name="saml_jit_event_review_due"
            ),
        ]
        constraints = [
            # The replay guard: the login's own event row, written in the
            # login's transaction, admits an assertion once on every node.
            models.UniqueConstraint(
                fields=["idp_entity_id", "assertion_id"],
                condition=models.Q(kind__in=ASSERTION_CONSUMING_KINDS) & ~models.Q(assertion_id=""),
                name="saml_jit_event_assertion_once",
            ),
        ]

    def __str__(self) -> str:
        who = self.username or self.subject or "-"
        return f"{self.get_kind_display()} {who} ({self.created_at:%Y-%m-%d %H:%M:%S})"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Provisioning events are append-only.")
        super().save(*args, **kwargs)
