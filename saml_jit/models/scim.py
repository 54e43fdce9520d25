"""SCIM clients (bearer tokens bound to one IdP) and the groups an IdP manages over SCIM."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH


class ScimClient(models.Model):
    """An identity provider's SCIM client: one bearer token, bound to one IdP.

    Only a SHA-256 hash of the token is stored; the token itself is shown
    once, when it is created. The client sees and changes only the users
    bound to its IdP and the groups that IdP manages over SCIM.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH)
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("SCIM client")
        verbose_name_plural = _("SCIM clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScimGroup(models.Model):
    """A Django group that an IdP manages over SCIM.

    Only groups created over SCIM are managed: a SCIM client can never take
    over a group that already existed (an administrator's group with
    permissions, say). Every client of the same IdP sees the same groups, so
    a token can be replaced without losing them.
    """

    group = models.OneToOneField(
        "auth.Group", on_delete=models.CASCADE, related_name="saml_jit_scim", verbose_name=_("group")
    )
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH, db_index=True)
    external_id = models.CharField(_("external ID"), max_length=SUBJECT_MAX_LENGTH, blank=True)
    client = models.ForeignKey(
        ScimClient,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="groups",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("SCIM-managed group")
        verbose_name_plural = _("SCIM-managed groups")
        ordering = ["idp_entity_id", "group_id"]

    def __str__(self) -> str:
        return f"{self.group} @ {self.idp_entity_id}"
