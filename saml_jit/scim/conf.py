"""SCIM settings, read lazily from ``settings.SAML_JIT`` (see :mod:`saml_jit.conf`)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from ..conf import app_settings

SUBJECT_EXTERNAL_ID = "externalId"
SUBJECT_USERNAME = "userName"
SUBJECT_ATTRIBUTES = (SUBJECT_EXTERNAL_ID, SUBJECT_USERNAME)


def subject_attribute(entity_id: str) -> str:
    """The SCIM attribute that is the SAML subject for ``entity_id`` (per IdP, ``SCIM_SUBJECT_ATTRIBUTE``)."""
    value = app_settings.for_idp(entity_id).SCIM_SUBJECT_ATTRIBUTE
    if value not in SUBJECT_ATTRIBUTES:
        raise ImproperlyConfigured(
            f"SAML_JIT['SCIM_SUBJECT_ATTRIBUTE'] for {entity_id} must be one of {', '.join(SUBJECT_ATTRIBUTES)}."
        )
    return value


def username_fallback(entity_id: str) -> bool:
    """Whether a user without externalId is bound by its userName (``SCIM_USERNAME_FALLBACK``)."""
    return bool(app_settings.for_idp(entity_id).SCIM_USERNAME_FALLBACK)


def hard_delete() -> bool:
    return app_settings.SCIM_HARD_DELETE


def max_body() -> int:
    return app_settings.SCIM_MAX_BODY


def page_size() -> int:
    return app_settings.SCIM_PAGE_SIZE


def refusal_event_interval() -> int:
    return app_settings.SCIM_REFUSAL_EVENT_INTERVAL
