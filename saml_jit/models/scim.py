"""SCIM clients (bearer tokens bound to one IdP), what they keep about their users, and their groups."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH

#: The index saml_jit adds to the user model's table (migration 0010) so that a
#: SCIM ``userName eq`` filter (case-insensitive) does not read every user.
USER_USERNAME_INDEX = "saml_jit_user_username_upper"
#: Longest display value kept from a SCIM client (displayName, department...).
SCIM_VALUE_MAX_LENGTH = 256


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
    #: Counts the changes made over SCIM (name, externalId, members): the
    #: group's ETag, which a group of any size gets without reading its members.
    revision = models.PositiveBigIntegerField(_("revision"), default=1)
    modified_at = models.DateTimeField(_("modified at"), default=timezone.now)

    class Meta:
        verbose_name = _("SCIM-managed group")
        verbose_name_plural = _("SCIM-managed groups")
        ordering = ["idp_entity_id", "group_id"]

    def __str__(self) -> str:
        return f"{self.group} @ {self.idp_entity_id}"


class ScimProfile(models.Model):
    """What a SCIM client sent about one of its users that is not an account field.

    One row per identity (an account holds one identity per IdP, so two IdPs
    keep two profiles of the same person): the client's own ``externalId``
    (kept as sent, even when the binding uses ``userName``), the
    ``displayName`` it set, and the enterprise extension attributes Entra ID
    sends by default (RFC 7643 §4.3). None of them ever reaches a privilege,
    and the account's fields are written through saml_jit.provisioning only.
    """

    identity = models.OneToOneField(
        "saml_jit.FederatedIdentity",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="scim_profile",
        verbose_name=_("identity"),
    )
    external_id = models.CharField(_("external ID"), max_length=SUBJECT_MAX_LENGTH, blank=True, db_index=True)
    display_name = models.CharField(_("display name"), max_length=SCIM_VALUE_MAX_LENGTH, blank=True)
    employee_number = models.CharField(_("employee number"), max_length=SCIM_VALUE_MAX_LENGTH, blank=True)
    cost_center = models.CharField(_("cost center"), max_length=SCIM_VALUE_MAX_LENGTH, blank=True)
    organization = models.CharField(_("organization"), max_length=SCIM_VALUE_MAX_LENGTH, blank=True)
    division = models.CharField(_("division"), max_length=SCIM_VALUE_MAX_LENGTH, blank=True)
    department = models.CharField(_("department"), max_length=SCIM_VALUE_MAX_LENGTH, blank=True)
    #: The SCIM id of the person's manager, as the client sent it.
    manager = models.CharField(_("manager"), max_length=SUBJECT_MAX_LENGTH, blank=True)
    modified_at = models.DateTimeField(_("modified at"), default=timezone.now)

    class Meta:
        verbose_name = _("SCIM profile")
        verbose_name_plural = _("SCIM profiles")
        ordering = ["identity"]

    def __str__(self) -> str:
        return str(self.identity)


def user_username_index(user_model: Any) -> models.Index | None:
    """``UPPER(username)`` on the user table; None when the username is the email (0006 indexes it)."""
    name = user_model.USERNAME_FIELD
    if name == user_model.get_email_field_name():
        return None
    return models.Index(Upper(name), name=USER_USERNAME_INDEX)
