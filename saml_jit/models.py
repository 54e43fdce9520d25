from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .saml.limits import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH  # SAML core §8.3

if TYPE_CHECKING:
    from django.contrib.auth.models import Group

#: The index saml_jit adds to the user model's table (migration 0006) so that
#: a case-insensitive email look-up (first logins) does not read every user.
USER_EMAIL_INDEX = "saml_jit_user_email_upper"


def _email_field(user_model: Any) -> str | None:
    name = user_model.get_email_field_name()
    try:
        field = user_model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return name if getattr(field, "concrete", False) else None


def user_email_index(user_model: Any) -> models.Index | None:
    """``UPPER(email)`` on the user table, or None for a user model without an email column."""
    name = _email_field(user_model)
    return models.Index(Upper(name), name=USER_EMAIL_INDEX) if name else None


def users_with_email(user_model: Any, email: str) -> models.QuerySet[Any]:
    """Users whose email equals ``email`` ignoring ASCII case, through :data:`USER_EMAIL_INDEX`.

    Same matches as ``email__iexact`` for the ASCII addresses saml_jit
    accepts, but as ``UPPER(email) = 'ADDRESS'``: the expression the index is
    built on (``iexact`` is ``LIKE`` on SQLite and ``UPPER(email::text)`` on
    PostgreSQL, which no index serves).
    """
    name = _email_field(user_model)
    if name is None:
        return cast("models.QuerySet[Any]", user_model._default_manager.none())
    return cast(
        "models.QuerySet[Any]",
        user_model._default_manager.alias(_saml_jit_email=Upper(name)).filter(_saml_jit_email=email.upper()),
    )


class FederatedIdentity(models.Model):
    """A stable (IdP, subject) pair bound to one local user.

    Logins are looked up through this binding only, never by email or
    username, so one IdP can never sign in as another IdP's user.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="saml_identities",
        verbose_name=_("user"),
    )
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH)
    subject = models.CharField(_("subject"), max_length=SUBJECT_MAX_LENGTH)
    name_id_format = models.CharField(_("NameID format"), max_length=255, blank=True)
    first_asserted_at = models.DateTimeField(_("first asserted at"), default=timezone.now)
    last_asserted_at = models.DateTimeField(_("last asserted at"), default=timezone.now)
    last_assertion_id = models.CharField(_("last assertion ID"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("federated identity")
        verbose_name_plural = _("federated identities")
        ordering = ["idp_entity_id", "subject"]
        constraints = [
            models.UniqueConstraint(fields=["idp_entity_id", "subject"], name="saml_jit_identity_idp_subject"),
            # One account holds at most one subject per IdP: a second subject
            # from the same IdP is a different person (or a reassigned ID).
            models.UniqueConstraint(fields=["user", "idp_entity_id"], name="saml_jit_identity_user_idp"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.idp_entity_id}"


class EventKind(models.TextChoices):
    CREATED = "created", _("created")
    LINKED = "linked", _("linked")
    UPDATED = "updated", _("updated")
    LOGIN = "login", _("login")
    DENIED = "denied", _("denied")
    REJECTED = "rejected", _("rejected")
    DEACTIVATED = "deactivated", _("deactivated")
    REACTIVATED = "reactivated", _("reactivated")
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
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    #: Who made the change when it was not the person signing in: the SCIM
    #: client's name for SCIM changes.
    actor = models.CharField(_("actor"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("provisioning event")
        verbose_name_plural = _("provisioning events")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["kind", "-created_at"], name="saml_jit_event_kind_time"),
            models.Index(fields=["idp_entity_id", "subject"], name="saml_jit_event_identity"),
            models.Index(fields=["assertion_id"], name="saml_jit_event_assertion"),
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


# ----------------------------------------------------------------------------
# SCIM


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
