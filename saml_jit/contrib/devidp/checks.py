"""System checks of the development IdP: never with DEBUG off, and trusted by the SP."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .idp import registered_site


class Codes:
    DEBUG_OFF = "saml_jit.devidp.E001"
    NOT_TRUSTED = "saml_jit.devidp.W001"


class Hints:
    DEBUG_OFF = (
        'Remove "saml_jit.contrib.devidp" from INSTALLED_APPS (and its URLs) outside development: it lets '
        "anyone who reaches it sign in as anyone."
    )
    NOT_TRUSTED = (
        "Pass idp_metadata_xml=devidp.metadata(base_url) to saml_jit.config.saml_config in settings "
        "(from saml_jit.contrib import devidp); until then the SP refuses the dev IdP's responses."
    )


def _installed() -> bool:
    # Registered on import: silent where the app is imported but not installed.
    return apps.is_installed("saml_jit.contrib.devidp")


@register(Tags.security)
def check_debug(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or not _installed():
        return []
    return [Error("The development IdP is installed while DEBUG is off.", hint=Hints.DEBUG_OFF, id=Codes.DEBUG_OFF)]


@register(Tags.security)
def check_trusted(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if registered_site() is not None or not _installed():
        return []
    message = "The development IdP is installed but SAML_CONFIG does not trust it (devidp.metadata() never called)."
    return [Warning(message, hint=Hints.NOT_TRUSTED, id=Codes.NOT_TRUSTED)]
