"""Federated identities: the stable (IdP, subject) binding of a local account."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..saml.limits import ENTITY_ID_MAX_LENGTH, SUBJECT_MAX_LENGTH


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
    #: When the binding was made (a first login, a link by email, a SCIM create).
    bound_at = models.DateTimeField(_("bound at"), default=timezone.now)
    #: The IdP's assertions: None until its first SAML login (an identity SCIM pre-provisioned).
    first_asserted_at = models.DateTimeField(_("first asserted at"), null=True, blank=True)
    last_asserted_at = models.DateTimeField(_("last asserted at"), null=True, blank=True)
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
        indexes = [
            # The dormancy sweep: identities of one IdP not asserted since a cut-off.
            models.Index(fields=["idp_entity_id", "last_asserted_at"], name="saml_jit_identity_evidence"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.idp_entity_id}"
