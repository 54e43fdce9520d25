"""Grants: the memberships and privileges saml_jit granted from assertions."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH

if TYPE_CHECKING:
    from django.contrib.auth.models import Group


class GrantKind(models.TextChoices):
    GROUP = "group", _("group membership")
    STAFF = "staff", _("staff status")
    SUPERUSER = "superuser", _("superuser status")


class Grant(models.Model):
    """A group membership or privilege that saml_jit granted from an assertion.

    Only what saml_jit granted is ever taken away by it: a membership an
    administrator added by hand has no grant row and is never touched.
    ``expires_at`` is set for privileged grants; past it, the grant stops
    counting even if the person never signs in again.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saml_grants", verbose_name=_("user")
    )
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH)
    kind = models.CharField(_("kind"), max_length=16, choices=GrantKind.choices, default=GrantKind.GROUP)
    group = models.ForeignKey(
        "auth.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="saml_grants",
        verbose_name=_("group"),
    )
    granted_at = models.DateTimeField(_("granted at"), default=timezone.now)
    last_asserted_at = models.DateTimeField(_("last asserted at"), default=timezone.now)
    assertion_id = models.CharField(_("last assertion ID"), max_length=255, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    #: The authentication context of the sign-in that last granted or renewed it: its AuthnContextClassRef,
    #: or the authnmethodsreferences value that showed MFA ("" before saml_jit kept it).
    authn_context = models.CharField(_("authentication context"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        ordering = ["user_id", "kind", "group_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idp_entity_id", "group"],
                condition=models.Q(kind="group"),
                name="saml_jit_grant_group",
            ),
            models.UniqueConstraint(
                fields=["user", "idp_entity_id", "kind"],
                condition=~models.Q(kind="group"),
                name="saml_jit_grant_flag",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="group", group__isnull=False)
                | (~models.Q(kind="group") & models.Q(group__isnull=True)),
                name="saml_jit_grant_group_iff_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="saml_jit_grant_expiry"),
            models.Index(fields=["user", "expires_at"], name="saml_jit_grant_user_expiry"),
        ]

    def __str__(self) -> str:
        what = (
            cast("Group", self.group).name
            if self.kind == GrantKind.GROUP and self.group_id
            else self.get_kind_display()
        )
        return f"{what} for {self.user} from {self.idp_entity_id}"

    @property
    def target(self) -> str:
        """What the grant gives: the group name, or ``staff`` / ``superuser``."""
        # A group grant always has a group (the check constraint saml_jit_grant_group_iff_kind).
        return cast("Group", self.group).name if self.kind == GrantKind.GROUP else self.kind
