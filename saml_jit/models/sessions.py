"""The session index: which Django sessions a person holds from which IdP, for single logout of them all."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH


class SamlSession(models.Model):
    """One Django session established by a SAML login (kept only with ``LOGOUT_ALL_SESSIONS``).

    An IdP-initiated LogoutRequest then ends every session listed here for
    the person and that IdP, through the configured session engine, on
    whichever node receives it. A row outliving its session (it expired, or
    was cycled) is harmless: ending it again ends nothing.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saml_sessions", verbose_name=_("user")
    )
    idp_entity_id = models.CharField(_("IdP entity ID"), max_length=ENTITY_ID_MAX_LENGTH)
    session_key = models.CharField(_("session key"), max_length=255)
    assertion_id = models.CharField(_("assertion ID"), max_length=255, blank=True)
    authn_instant = models.DateTimeField(_("authenticated at"), null=True, blank=True)
    authn_context = models.CharField(_("authentication context"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("SAML session")
        verbose_name_plural = _("SAML sessions")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "idp_entity_id"], name="saml_jit_session_user_idp"),
            models.Index(fields=["expires_at"], name="saml_jit_session_expiry"),
        ]

    def __str__(self) -> str:
        return f"session of {self.user} from {self.idp_entity_id}"
