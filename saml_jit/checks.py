"""System checks over saml_jit, djangosaml2 and pysaml2 configuration."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist
from django.utils.module_loading import import_string

from .conf import DEFAULT_ATTRIBUTE_MAP, KNOWN_KEYS, PER_IDP_KEYS, SYNC_MODES, USERNAME_SOURCES, app_settings
from .mapping import FORBIDDEN_FIELDS

BACKEND = "saml_jit.backends.SamlJitBackend"
EXPIRY_MIDDLEWARE = "saml_jit.middleware.GrantExpiryMiddleware"


class Codes:
    DJANGOSAML2_MISSING = "saml_jit.E001"
    BACKEND_MISSING = "saml_jit.E002"
    DANGEROUS_ATTRIBUTE_MAP = "saml_jit.E003"
    UNKNOWN_SETTING = "saml_jit.E004"
    INVALID_SETTING = "saml_jit.E005"
    UNKNOWN_USER_FIELD = "saml_jit.E006"
    POLICY_IMPORT = "saml_jit.E007"
    UNSIGNED_ASSERTIONS = "saml_jit.E008"
    INVALID_GROUP_PATTERN = "saml_jit.E009"
    UNSOLICITED_GLOBAL = "saml_jit.E010"
    REPLAY_STORE_UNSUPPORTED = "saml_jit.E011"
    EMAIL_SUBJECT_MULTI_IDP = "saml_jit.W001"
    IDP_INITIATED = "saml_jit.W002"
    SUPERUSER_ALLOWED = "saml_jit.W003"
    EXPIRY_MIDDLEWARE_MISSING = "saml_jit.W004"


class Hints:
    REPLAY_STORE_UNSUPPORTED = (
        'Use SAML_JIT["REPLAY_STORE"] = "cache" with a shared Redis or Memcached cache: this database '
        "ignores the partial unique constraint that makes the login event the replay record, so a "
        "captured assertion could be used again."
    )
    INVALID_GROUP_PATTERN = "GROUP_PATTERN must be a Python regular expression; it must match a whole group value."
    SUPERUSER_ALLOWED = (
        "Superuser status from SAML lets whoever administers the IdP group administer this site. "
        "Prefer staff plus permissions through groups; keep PRIVILEGE_TTL short if you keep this."
    )
    EXPIRY_MIDDLEWARE_MISSING = (
        'Add "saml_jit.middleware.GrantExpiryMiddleware" after AuthenticationMiddleware, and run '
        "saml_jit_expire_grants from cron: without either, expired privileges keep counting."
    )
    DJANGOSAML2_MISSING = 'Add "djangosaml2" to INSTALLED_APPS.'
    BACKEND_MISSING = f'Add "{BACKEND}" (or a subclass) to AUTHENTICATION_BACKENDS.'
    DANGEROUS_ATTRIBUTE_MAP = (
        "Remove these fields from ATTRIBUTE_MAP. Privileges and account state come only from "
        "explicit configuration; saml_jit ignores them in the map."
    )
    UNKNOWN_SETTING = "Check the spelling against the README's settings table."
    UNKNOWN_USER_FIELD = "Map attributes only onto concrete fields of the user model."
    POLICY_IMPORT = 'Point SAML_JIT["POLICY"] at a subclass of saml_jit.policy.Policy.'
    UNSIGNED_ASSERTIONS = (
        'Set SAML_CONFIG["service"]["sp"]["want_assertions_signed"] = True: anyone who can '
        "reach the ACS could otherwise sign in as anyone."
    )
    EMAIL_SUBJECT_MULTI_IDP = (
        "Use a persistent NameID or an immutable attribute (subject-id, objectidentifier) as the "
        "subject: emails change, get reassigned, and two IdPs may assert the same one."
    )
    IDP_INITIATED = (
        "IdP-initiated login cannot be tied to a request this browser made, which opens the ACS to "
        "login CSRF. Keep ALLOW_IDP_INITIATED off unless this IdP truly needs it."
    )
    UNSOLICITED_GLOBAL = (
        'Remove allow_unsolicited from SAML_CONFIG and set SAML_JIT["IDPS"][entity_id]["ALLOW_IDP_INITIATED"] '
        "= True for the IdPs that need IdP-initiated login: saml_jit then accepts only responses without "
        "InResponseTo from those IdPs."
    )


def _saml_config() -> dict[str, Any]:
    return dict(getattr(settings, "SAML_CONFIG", None) or {})


def _sp_config() -> dict[str, Any]:
    return dict((_saml_config().get("service") or {}).get("sp") or {})


def _idp_entity_ids() -> set[str]:
    return set(app_settings.IDPS)


def _metadata_sources() -> int:
    metadata = _saml_config().get("metadata") or {}
    return sum(len(value) for value in metadata.values() if isinstance(value, (list, tuple)))


@register(Tags.security)
def check_installation(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if "djangosaml2" not in settings.INSTALLED_APPS:
        errors.append(
            Error("djangosaml2 is not installed.", hint=Hints.DJANGOSAML2_MISSING, id=Codes.DJANGOSAML2_MISSING)
        )
    if not any(_is_saml_jit_backend(path) for path in settings.AUTHENTICATION_BACKENDS):
        errors.append(
            Error("The saml_jit backend is not configured.", hint=Hints.BACKEND_MISSING, id=Codes.BACKEND_MISSING)
        )
    return errors


def _is_saml_jit_backend(path: str) -> bool:
    from .backends import SamlJitBackend

    try:
        backend = import_string(path)
    except ImportError:
        return False
    return isinstance(backend, type) and issubclass(backend, SamlJitBackend)


@register(Tags.security)
def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = [*_check_replay_store()]
    raw = app_settings.raw
    unknown = set(raw) - KNOWN_KEYS
    for entity_id, overrides in app_settings.IDPS.items():
        unknown |= {f"IDPS[{entity_id!r}].{key}" for key in set(overrides or {}) - PER_IDP_KEYS}
    if unknown:
        errors.append(
            Error(
                f"Unknown SAML_JIT settings: {', '.join(sorted(unknown))}.",
                hint=Hints.UNKNOWN_SETTING,
                id=Codes.UNKNOWN_SETTING,
            )
        )
    for entity_id in ["", *app_settings.IDPS]:
        errors.extend(_check_idp(entity_id))
    try:
        import_string(app_settings.POLICY)
    except ImportError as exc:
        errors.append(Error(f"Cannot import the policy: {exc}", hint=Hints.POLICY_IMPORT, id=Codes.POLICY_IMPORT))
    return errors


def _check_replay_store() -> list[CheckMessage]:
    if app_settings.REPLAY_STORE != "database":
        return []
    from django.db import connections, router

    from .models import ProvisioningEvent

    alias = router.db_for_write(ProvisioningEvent)
    if connections[alias].features.supports_partial_indexes:
        return []
    return [
        Error(
            f"REPLAY_STORE is 'database', but the {connections[alias].vendor} database {alias!r} cannot "
            "enforce saml_jit's replay record (a unique constraint with a condition).",
            hint=Hints.REPLAY_STORE_UNSUPPORTED,
            id=Codes.REPLAY_STORE_UNSUPPORTED,
        )
    ]


def _check_idp(entity_id: str) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    where = f" for {entity_id}" if entity_id else ""
    idp = app_settings.for_idp(entity_id)
    dangerous = sorted(set(idp.ATTRIBUTE_MAP) & FORBIDDEN_FIELDS)
    if dangerous:
        errors.append(
            Error(
                f"ATTRIBUTE_MAP{where} maps attributes onto {', '.join(dangerous)}.",
                hint=Hints.DANGEROUS_ATTRIBUTE_MAP,
                id=Codes.DANGEROUS_ATTRIBUTE_MAP,
            )
        )
    user_model = get_user_model()
    for field in sorted(set(idp.ATTRIBUTE_MAP) - FORBIDDEN_FIELDS):
        try:
            user_model._meta.get_field(field)
        except FieldDoesNotExist:
            errors.append(
                Error(
                    f"ATTRIBUTE_MAP{where} names {field!r}, which {user_model.__name__} does not have.",
                    hint=Hints.UNKNOWN_USER_FIELD,
                    id=Codes.UNKNOWN_USER_FIELD,
                )
            )
    bad_modes = sorted(field for field, mode in idp.SYNC.items() if mode not in SYNC_MODES)
    if bad_modes:
        errors.append(
            Error(
                f"SYNC{where} has modes other than {SYNC_MODES} for {', '.join(bad_modes)}.", id=Codes.INVALID_SETTING
            )
        )
    if idp.USERNAME_SOURCE not in USERNAME_SOURCES:
        errors.append(Error(f"USERNAME_SOURCE{where} must be one of {USERNAME_SOURCES}.", id=Codes.INVALID_SETTING))
    errors.extend(_check_groups(idp, where))
    return errors


def _check_groups(idp: Any, where: str) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if idp.GROUP_PATTERN:
        try:
            re.compile(idp.GROUP_PATTERN)
        except re.error as exc:
            errors.append(
                Error(
                    f"GROUP_PATTERN{where} is not a valid regular expression: {exc}.",
                    hint=Hints.INVALID_GROUP_PATTERN,
                    id=Codes.INVALID_GROUP_PATTERN,
                )
            )
    if idp.ALLOW_SUPERUSER:
        errors.append(
            Warning(
                f"Superuser status can be granted from SAML{where}.",
                hint=Hints.SUPERUSER_ALLOWED,
                id=Codes.SUPERUSER_ALLOWED,
            )
        )
    expiring = idp.PRIVILEGE_TTL is not None and (
        idp.PRIVILEGED_GROUPS or idp.STAFF_GROUPS or (idp.ALLOW_SUPERUSER and idp.SUPERUSER_GROUPS)
    )
    if expiring and EXPIRY_MIDDLEWARE not in settings.MIDDLEWARE:
        errors.append(
            Warning(
                f"Privileges from SAML{where} expire, but GrantExpiryMiddleware is not installed.",
                hint=Hints.EXPIRY_MIDDLEWARE_MISSING,
                id=Codes.EXPIRY_MIDDLEWARE_MISSING,
            )
        )
    return errors


def _email_keyed(entity_id: str) -> bool:
    idp = app_settings.for_idp(entity_id)
    email_names = {name.casefold() for name in (*DEFAULT_ATTRIBUTE_MAP["email"], *idp.ATTRIBUTE_MAP.get("email", ()))}
    if idp.SUBJECT_ATTRIBUTE:
        return any(name.casefold() in email_names for name in idp.SUBJECT_ATTRIBUTE)
    sp = _sp_config()
    formats = [sp.get("name_id_format"), sp.get("name_id_policy_format")]
    flat = [f for value in formats for f in (value if isinstance(value, (list, tuple)) else [value]) if f]
    return any(str(f).endswith("emailAddress") for f in flat)


@register(Tags.security)
def check_saml_config(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    sp = _sp_config()
    # pysaml2's own defaults: assertions unsigned allowed, responses signed.
    signed = (
        sp.get("want_assertions_signed", False)
        or sp.get("want_response_signed", True)
        or sp.get("want_assertions_or_response_signed", False)
    )
    if sp and not signed:
        errors.append(
            Error(
                "SAML_CONFIG accepts unsigned assertions.", hint=Hints.UNSIGNED_ASSERTIONS, id=Codes.UNSIGNED_ASSERTIONS
            )
        )
    if sp.get("allow_unsolicited"):
        errors.append(
            Error(
                "SAML_CONFIG allows unsolicited responses from every IdP.",
                hint=Hints.UNSOLICITED_GLOBAL,
                id=Codes.UNSOLICITED_GLOBAL,
            )
        )
    initiated = sorted(
        e or "(all IdPs)" for e in ["", *_idp_entity_ids()] if app_settings.for_idp(e).ALLOW_IDP_INITIATED
    )
    if initiated:
        errors.append(
            Warning(
                f"IdP-initiated login is on for {', '.join(initiated)}.",
                hint=Hints.IDP_INITIATED,
                id=Codes.IDP_INITIATED,
            )
        )
    several_idps = max(len(_idp_entity_ids()), _metadata_sources()) > 1
    if several_idps and any(_email_keyed(entity_id) for entity_id in ["", *_idp_entity_ids()]):
        errors.append(
            Warning(
                "Identities are keyed by email while several IdPs are trusted.",
                hint=Hints.EMAIL_SUBJECT_MULTI_IDP,
                id=Codes.EMAIL_SUBJECT_MULTI_IDP,
            )
        )
    return errors
