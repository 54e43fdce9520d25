"""One lifecycle state per account, with since when, why, by whom, and the last evidence from the IdP."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import lifecycle as rules


class LifecycleState(models.TextChoices):
    ACTIVE = rules.ACTIVE, _("active")
    PENDING = rules.PENDING, _("pending approval")
    SUSPENDED = rules.SUSPENDED, _("suspended")
    DEPROVISIONED = rules.DEPROVISIONED, _("deprovisioned")


class LifecycleSource(models.TextChoices):
    SAML = rules.SAML, _("SAML")
    SCIM = rules.SCIM, _("SCIM")
    ADMIN = rules.ADMIN, _("administrator")
    DORMANCY = rules.DORMANCY, _("dormancy")
    SYSTEM = rules.SYSTEM, _("system")


class AccountLifecycle(models.Model):
    """The lifecycle of one account (any user model): its state and the evidence behind it.

    ``is_active`` on the user follows ``state`` (only ``active`` may sign
    in). Changed only through :func:`saml_jit.provisioning.lifecycle.transition`,
    which writes the event. ``last_scim_at`` is the last time the IdP touched
    the account over SCIM; the last assertion is kept per identity
    (:attr:`FederatedIdentity.last_asserted_at`) — never Django's
    ``last_login``, which a password login also moves.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="saml_lifecycle",
        verbose_name=_("user"),
    )
    state = models.CharField(_("state"), max_length=20, choices=LifecycleState.choices, default=rules.ACTIVE)
    since = models.DateTimeField(_("since"), default=timezone.now)
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True)
    source = models.CharField(_("set by"), max_length=16, choices=LifecycleSource.choices, default=rules.SYSTEM)
    #: Who made the change: the administrator's username, the SCIM client's name.
    actor = models.CharField(_("actor"), max_length=150, blank=True)
    #: How the account came to be: jit, scim, admin or local (created outside saml_jit).
    created_by = models.CharField(_("created by"), max_length=16, blank=True)
    last_scim_at = models.DateTimeField(_("last SCIM touch"), null=True, blank=True)

    class Meta:
        verbose_name = _("account lifecycle")
        verbose_name_plural = _("account lifecycles")
        ordering = ["-since"]
        permissions = [("manage_lifecycle", _("Can approve, suspend, deprovision and reactivate accounts"))]
        indexes = [
            models.Index(fields=["state", "since"], name="saml_jit_lifecycle_state"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_state_display()})"

    @property
    def rules(self) -> rules.Lifecycle:
        """The plain-data view the rules take."""
        return rules.Lifecycle(self.state, self.source, self.reason_code)


class PendingAccount(AccountLifecycle):
    """Accounts waiting for an administrator's approval (the approval queue in the admin)."""

    class Meta:
        proxy = True
        verbose_name = _("account awaiting approval")
        verbose_name_plural = _("accounts awaiting approval")


def lifecycle_of(user: Any) -> rules.Lifecycle:
    """``user``'s lifecycle as plain data; an account without a row follows its ``is_active``."""
    row = getattr(user, "saml_lifecycle", None) if user.pk is not None else None
    current = row.rules if row is not None else rules.Lifecycle(rules.ACTIVE, rules.SYSTEM, "")
    return rules.effective(current, bool(getattr(user, "is_active", True)))
