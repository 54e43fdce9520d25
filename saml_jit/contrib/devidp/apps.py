from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevIdpConfig(AppConfig):
    name = "saml_jit.contrib.devidp"
    label = "saml_jit_devidp"
    verbose_name = _("saml_jit development IdP")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
