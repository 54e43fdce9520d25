from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SamlJitConfig(AppConfig):
    name = "saml_jit"
    verbose_name = _("SAML provisioning")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, metadata_events  # noqa: F401  (checks registers the system checks)
        from .saml import adapter, config  # noqa: F401  (config follows setting changes)

        # Patches pysaml2 only while the in-process backend is selected, so
        # that SAML_CONFIG may name "crypto_backend": "saml_jit.xmlsec" directly.
        adapter.sync_with_settings()
        metadata_events.connect()  # refused IdP metadata becomes an event
