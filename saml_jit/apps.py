from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SamlJitConfig(AppConfig):
    name = "saml_jit"
    verbose_name = _("SAML provisioning")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            crypto,
        )

        # Lets SAML_CONFIG name "crypto_backend": "saml_jit.xmlsec" directly.
        crypto.enable()
