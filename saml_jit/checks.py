"""System checks over saml_jit, djangosaml2 and pysaml2 configuration."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import InvalidCacheBackendError
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.shortcuts import resolve_url
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import NoReverseMatch
from django.utils.module_loading import import_string

from .conf import (
    DEFAULT_ATTRIBUTE_MAP,
    GLOBAL_DEFAULTS,
    KNOWN_KEYS,
    PER_IDP_KEYS,
    SYNC_MODES,
    USERNAME_SOURCES,
    app_settings,
)
from .mapping import FORBIDDEN_FIELDS
from .saml import metadata as managed_metadata
from .saml.certificates import certificates, configured_documents

BACKEND = "saml_jit.backends.SamlJitBackend"
EXPIRY_MIDDLEWARE = "saml_jit.middleware.GrantExpiryMiddleware"
SAML_SESSION_MIDDLEWARE = "saml_jit.middleware.SamlSessionMiddleware"
DJANGO_SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"


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
    CRYPTO_BACKEND_UNKNOWN = "saml_jit.E012"
    SCIM_SUBJECT_ATTRIBUTE_UNKNOWN = "saml_jit.E013"
    ERROR_TEMPLATE_MISSING = "saml_jit.E014"
    IMPORT_FAILED = "saml_jit.E015"
    REPLAY_CACHE_UNKNOWN = "saml_jit.E016"
    BACKEND_HOOK_UNUSED = "saml_jit.W005"
    POLICY_HOOK_UNUSED = "saml_jit.W006"
    DEPRECATED_LOADER_PATH = "saml_jit.W007"
    SSO_BYPASS_BACKEND = "saml_jit.W010"
    SAML_SESSION_MIDDLEWARE_MISSING = "saml_jit.W008"
    SAML_SESSION_MIDDLEWARE_ORDER = "saml_jit.W009"
    SAML_CONFIG_EMPTY = "saml_jit.E017"
    SP_KEYS_MISSING = "saml_jit.E018"
    SAML_COOKIE_SAMESITE_NONE_INSECURE = "saml_jit.W011"
    HOME_URL_UNRESOLVABLE = "saml_jit.W012"
    AUTHN_CONTEXT_INVALID = "saml_jit.E030"
    SESSION_SETTING_INVALID = "saml_jit.E031"
    LOGOUT_ALL_SESSIONS_UNSUPPORTED = "saml_jit.W030"
    METADATA_SETTING_INVALID = "saml_jit.E020"
    METADATA_EXPIRED = "saml_jit.E021"
    IDP_CERT_EXPIRING = "saml_jit.W020"
    METADATA_NOT_FETCHED = "saml_jit.W021"


class Hints:
    SAML_CONFIG_EMPTY = (
        "Build it with saml_jit.config.saml_config(base_url=..., keys_dir=..., idp_metadata_...=...) "
        "(see the README, Installation): without it no sign-in can start."
    )
    SP_KEYS_MISSING = (
        "Run `python manage.py saml_jit_keys` (it writes the files SAML_CONFIG names, or .saml_jit/keys/), and "
        "pass keys_dir= to saml_config: without keys the SP cannot sign logout requests or decrypt assertions."
    )
    SAML_COOKIE_SAMESITE_NONE_INSECURE = (
        "Browsers drop a SameSite=None cookie that is not Secure, so every SP-initiated login is refused as "
        "unsolicited. Over https set SESSION_COOKIE_SECURE = True; for local development over plain http set "
        'SAML_SESSION_COOKIE_SAMESITE = "Lax".'
    )
    HOME_URL_UNRESOLVABLE = (
        'Give a path ("/"), a full URL, or the name of a URL pattern in ROOT_URLCONF ("home", "app:index"). '
        'The error page\'s "Home" link goes to "/" until it resolves.'
    )
    AUTHN_CONTEXT_INVALID = (
        'Give REQUIRED_AUTHN_CONTEXT as a class reference ("https://refeds.org/profile/mfa"), a list of them, '
        'or {"classes": [...], "comparison": "exact" | "minimum" | "better" | "maximum"}; or remove it.'
    )
    SESSION_SETTING_INVALID = (
        "MAX_SESSION_AGE is a number of seconds (at least 1) or None; FORCE_AUTHN_MAX_AGE a number of seconds "
        "(at least 1); PRIVILEGES_REQUIRE_MFA needs at least one value in MFA_AUTHN_CONTEXTS, or no sign-in "
        "could ever get privileges."
    )
    LOGOUT_ALL_SESSIONS_UNSUPPORTED = (
        "Signed-cookie sessions live in the browser and cannot be ended from the server: use the db, "
        "cached_db or cache session engine, or expect single logout to end only the browser it reaches."
    )
    METADATA_SETTING_INVALID = (
        'Each SAML_JIT["METADATA"] entry is an https URL, a file path, or {"url" or "file": ..., "cert": the '
        "metadata signer's certificate file}; METADATA_CACHE must name a cache from CACHES."
    )
    METADATA_EXPIRED = (
        "Run manage.py saml_jit_metadata and ask the IdP (or federation) operator why its metadata is stale: "
        "nobody can sign in through these IdPs until a valid copy is fetched."
    )
    IDP_CERT_EXPIRING = (
        "Ask the IdP operator whether a key rollover is planned; if so, make sure its new certificate is in the "
        "metadata before the old one is retired (saml_jit_metadata shows what the SP trusts). "
        "SAML_JIT['METADATA_CERT_WARNING_DAYS'] sets how early this warns."
    )
    METADATA_NOT_FETCHED = (
        "Run manage.py saml_jit_metadata to fetch it now; until a good copy exists nobody can sign in through "
        "the IdPs it describes."
    )
    SAML_SESSION_MIDDLEWARE_MISSING = (
        f'Put "{SAML_SESSION_MIDDLEWARE}" in MIDDLEWARE, before SessionMiddleware, instead of '
        '"djangosaml2.middleware.SamlSessionMiddleware": djangosaml2\'s answers a session store that fails '
        "after a login has committed with 400 (the person is told their request was bad); saml_jit's answers 503."
    )
    SAML_SESSION_MIDDLEWARE_ORDER = (
        f'Move "{SAML_SESSION_MIDDLEWARE}" before "{DJANGO_SESSION_MIDDLEWARE}": only from outside it can it '
        "answer a Django session that fails to save after a login with 503 instead of Django's 400."
    )
    CRYPTO_BACKEND_UNKNOWN = (
        'Set SAML_JIT["CRYPTO_BACKEND"] to "xmlsec" (in-process, the default) or "xmlsec1" (pysaml2 starts the '
        "xmlsec1 program). Until then every SAML request fails."
    )
    SCIM_SUBJECT_ATTRIBUTE_UNKNOWN = (
        'Set SAML_JIT["SCIM_SUBJECT_ATTRIBUTE"] to "externalId" (the default) or "userName": the SCIM attribute '
        "that equals the person's SAML subject. Until then every SCIM request fails."
    )
    ERROR_TEMPLATE_MISSING = (
        'Create the template, or remove SAML_JIT["ERROR_TEMPLATE"] to use saml_jit/error.html: refused sign-ins '
        "render it."
    )
    IMPORT_FAILED = "Point the setting at an importable callable (a dotted path), or remove it."
    REPLAY_CACHE_UNKNOWN = 'Name a cache from CACHES in SAML_JIT["REPLAY_CACHE"] (a shared Redis or Memcached).'
    BACKEND_HOOK_UNUSED = (
        "saml_jit's flow does not call djangosaml2's backend hooks: move the logic to the saml_jit hook named "
        "in the message (see the README, Customising the policy)."
    )
    POLICY_HOOK_UNUSED = (
        "Policy.populate_user is no longer called: override Policy.populate_fields(request, profile, settings, "
        "account, fields), which returns the fields to write."
    )
    DEPRECATED_LOADER_PATH = 'Set SAML_CONFIG_LOADER = "saml_jit.saml.config.config_loader".'
    SSO_BYPASS_BACKEND = (
        'Replace "django.contrib.auth.backends.ModelBackend" with "saml_jit.backends.PasswordBackend" in '
        "AUTHENTICATION_BACKENDS: Django's backend lets these accounts sign in with a password, around SSO."
    )
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
    return [*errors, *_check_session_middleware()]


def _is_saml_session_middleware(path: str) -> bool:
    from .middleware import SamlSessionMiddleware

    try:
        middleware = import_string(path)
    except ImportError:
        return False
    return isinstance(middleware, type) and issubclass(middleware, SamlSessionMiddleware)


def _check_session_middleware() -> list[CheckMessage]:
    middleware = list(settings.MIDDLEWARE)
    ours = [index for index, path in enumerate(middleware) if _is_saml_session_middleware(path)]
    if not ours:
        return [
            Warning(
                f"{SAML_SESSION_MIDDLEWARE} is not in MIDDLEWARE.",
                hint=Hints.SAML_SESSION_MIDDLEWARE_MISSING,
                id=Codes.SAML_SESSION_MIDDLEWARE_MISSING,
            )
        ]
    if DJANGO_SESSION_MIDDLEWARE in middleware and ours[0] > middleware.index(DJANGO_SESSION_MIDDLEWARE):
        return [
            Warning(
                f"{SAML_SESSION_MIDDLEWARE} comes after SessionMiddleware.",
                hint=Hints.SAML_SESSION_MIDDLEWARE_ORDER,
                id=Codes.SAML_SESSION_MIDDLEWARE_ORDER,
            )
        ]
    return []


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
        authn_errors = _check_authn(entity_id)
        errors.extend(authn_errors)
        if authn_errors and authn_errors[0].id == Codes.AUTHN_CONTEXT_INVALID:
            continue  # the IdP's settings cannot be read until it is fixed
        errors.extend(_check_idp(entity_id))
        errors.extend(_check_lifecycle(entity_id))
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


def _positive_seconds(value: Any, *, optional: bool) -> bool:
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_authn(entity_id: str) -> list[CheckMessage]:
    """REQUIRED_AUTHN_CONTEXT readable; session ages positive; MFA required with something that shows it."""
    where = f" for {entity_id}" if entity_id else ""
    try:
        idp = app_settings.for_idp(entity_id)
    except ValueError as exc:
        return [Error(f"{exc}{where}.", hint=Hints.AUTHN_CONTEXT_INVALID, id=Codes.AUTHN_CONTEXT_INVALID)]
    errors: list[CheckMessage] = []
    bad = [
        name
        for name, value, optional in (
            ("MAX_SESSION_AGE", idp.MAX_SESSION_AGE, True),
            ("FORCE_AUTHN_MAX_AGE", idp.FORCE_AUTHN_MAX_AGE, False),
        )
        if not _positive_seconds(value, optional=optional)
    ]
    if idp.PRIVILEGES_REQUIRE_MFA and not idp.MFA_AUTHN_CONTEXTS:
        bad.append("MFA_AUTHN_CONTEXTS")
    if bad:
        errors.append(
            Error(
                f"{', '.join(bad)}{where}: invalid.",
                hint=Hints.SESSION_SETTING_INVALID,
                id=Codes.SESSION_SETTING_INVALID,
            )
        )
    if idp.LOGOUT_ALL_SESSIONS and settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        errors.append(
            Warning(
                f"LOGOUT_ALL_SESSIONS is on{where}, but sessions are signed cookies.",
                hint=Hints.LOGOUT_ALL_SESSIONS_UNSUPPORTED,
                id=Codes.LOGOUT_ALL_SESSIONS_UNSUPPORTED,
            )
        )
    return errors


def _check_lifecycle(entity_id: str) -> list[CheckMessage]:
    days = app_settings.for_idp(entity_id).DORMANT_AFTER
    if days is None or (isinstance(days, int) and not isinstance(days, bool) and days >= 1):
        return []
    where = f" for {entity_id}" if entity_id else ""
    return [Error(f"DORMANT_AFTER{where} must be a number of days (at least 1) or None.", id=Codes.INVALID_SETTING)]


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
    return [*_signature_errors(), *_unsolicited_messages(), *_subject_warnings()]


@register(Tags.security)
def check_sp_setup(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """An SP that can start a login at all: a configuration, keys on disk, a cookie browsers keep."""
    return [*_config_errors(), *_cookie_warnings()]


def _config_errors() -> list[CheckMessage]:
    config = _saml_config()
    if not config.get("entityid") or not config.get("service"):
        message = "SAML_CONFIG is empty or has no entityid/service." if config else "SAML_CONFIG is not set."
        return [Error(message, hint=Hints.SAML_CONFIG_EMPTY, id=Codes.SAML_CONFIG_EMPTY)]
    if not (config.get("key_file") and config.get("cert_file")):
        message = "SAML_CONFIG has no key_file/cert_file: the SP has no keys."
        return [Error(message, hint=Hints.SP_KEYS_MISSING, id=Codes.SP_KEYS_MISSING)]
    pairs = [config, *(config.get("encryption_keypairs") or [])]
    named = {str(pair.get(name)) for pair in pairs for name in ("key_file", "cert_file") if pair.get(name)}
    missing = sorted(path for path in named if not Path(path).is_file())
    if missing:
        message = f"SAML_CONFIG names key files that do not exist: {', '.join(missing)}."
        return [Error(message, hint=Hints.SP_KEYS_MISSING, id=Codes.SP_KEYS_MISSING)]
    return []


def _cookie_warnings() -> list[CheckMessage]:
    # djangosaml2's (and so saml_jit's) SamlSessionMiddleware: SameSite=None by
    # default, Secure only when SESSION_COOKIE_SECURE is on.
    samesite = getattr(settings, "SAML_SESSION_COOKIE_SAMESITE", "None")
    if samesite is None or str(samesite).lower() != "none" or settings.SESSION_COOKIE_SECURE:
        return []
    message = "The SAML session cookie is SameSite=None without Secure (SESSION_COOKIE_SECURE is off)."
    return [
        Warning(message, hint=Hints.SAML_COOKIE_SAMESITE_NONE_INSECURE, id=Codes.SAML_COOKIE_SAMESITE_NONE_INSECURE)
    ]


def _signature_errors() -> list[CheckMessage]:
    sp = _sp_config()
    # pysaml2's own defaults: assertions unsigned allowed, responses signed.
    signed = (
        sp.get("want_assertions_signed", False)
        or sp.get("want_response_signed", True)
        or sp.get("want_assertions_or_response_signed", False)
    )
    if sp and not signed:
        message = "SAML_CONFIG accepts unsigned assertions."
        return [Error(message, hint=Hints.UNSIGNED_ASSERTIONS, id=Codes.UNSIGNED_ASSERTIONS)]
    return []


def _unsolicited_messages() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if _sp_config().get("allow_unsolicited"):
        message = "SAML_CONFIG allows unsolicited responses from every IdP."
        messages.append(Error(message, hint=Hints.UNSOLICITED_GLOBAL, id=Codes.UNSOLICITED_GLOBAL))
    initiated = sorted(
        e or "(all IdPs)" for e in ["", *_idp_entity_ids()] if app_settings.for_idp(e).ALLOW_IDP_INITIATED
    )
    if initiated:
        message = f"IdP-initiated login is on for {', '.join(initiated)}."
        messages.append(Warning(message, hint=Hints.IDP_INITIATED, id=Codes.IDP_INITIATED))
    return messages


def _subject_warnings() -> list[CheckMessage]:
    several_idps = max(len(_idp_entity_ids()), _metadata_sources()) > 1
    if several_idps and any(_email_keyed(entity_id) for entity_id in ["", *_idp_entity_ids()]):
        message = "Identities are keyed by email while several IdPs are trusted."
        return [Warning(message, hint=Hints.EMAIL_SUBJECT_MULTI_IDP, id=Codes.EMAIL_SUBJECT_MULTI_IDP)]
    return []


# ----------------------------------------------------------------------------
# Values of the global settings


#: Global settings that must be whole numbers, and the smallest value allowed.
_NUMBERS = {
    "MAX_RESPONSE_SIZE": 1,
    "CLOCK_SKEW": 0,
    "MAX_RESPONSE_AGE": 1,
    "SCIM_MAX_BODY": 1,
    "SCIM_PAGE_SIZE": 1,
    "SCIM_REFUSAL_EVENT_INTERVAL": 0,
    "METADATA_REFRESH": 1,
    "METADATA_RETRY": 1,
    "METADATA_TIMEOUT": 1,
    "METADATA_MAX_SIZE": 1,
    "METADATA_CERT_WARNING_DAYS": 0,
}
#: Global settings with a fixed set of values (the dedicated check ids have their own hint).
_CHOICES: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "CRYPTO_BACKEND": (("xmlsec", "xmlsec1"), Codes.CRYPTO_BACKEND_UNKNOWN, Hints.CRYPTO_BACKEND_UNKNOWN),
    "SCIM_SUBJECT_ATTRIBUTE": (
        ("externalId", "userName"),
        Codes.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN,
        Hints.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN,
    ),
    "REPLAY_STORE": (("database", "cache"), Codes.INVALID_SETTING, None),
}


def _raw_global(name: str) -> Any:
    return app_settings.raw.get(name, GLOBAL_DEFAULTS[name])


def _number_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, lowest in _NUMBERS.items():
        value = _raw_global(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            message = f"SAML_JIT[{name!r}] must be a whole number of at least {lowest}, not {value!r}."
            errors.append(Error(message, id=Codes.INVALID_SETTING))
    for name in ("CONFIG_MAX_AGE", "CONFIG_RETRY"):
        value = _raw_global(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            message = f"SAML_JIT[{name!r}] must be a number of seconds (or None), not {value!r}."
            errors.append(Error(message, id=Codes.INVALID_SETTING))
    return errors


def _choice_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, (allowed, code, hint) in _CHOICES.items():
        value = _raw_global(name)
        if value not in allowed:
            message = f"SAML_JIT[{name!r}] must be one of {', '.join(map(repr, allowed))}, not {value!r}."
            errors.append(Error(message, hint=hint, id=code))
    return errors


def _import_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("CONFIG_LOADER", "CONFIG_CACHE_KEY"):
        value = _raw_global(name)
        if not value or callable(value):
            continue
        try:
            found = import_string(str(value))
        except ImportError as exc:
            found, error = None, str(exc)
        else:
            error = "" if callable(found) else "it is not callable"
        if error:
            message = f"SAML_JIT[{name!r}] cannot be used: {error}."
            errors.append(Error(message, hint=Hints.IMPORT_FAILED, id=Codes.IMPORT_FAILED))
    return errors


def _environment_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    try:
        get_template(str(_raw_global("ERROR_TEMPLATE")))
    except TemplateDoesNotExist:
        message = f"The error template {_raw_global('ERROR_TEMPLATE')!r} does not exist."
        errors.append(Error(message, hint=Hints.ERROR_TEMPLATE_MISSING, id=Codes.ERROR_TEMPLATE_MISSING))
    store, alias = _raw_global("REPLAY_STORE"), _raw_global("REPLAY_CACHE")
    if store == "cache" and alias not in settings.CACHES:
        message = f"REPLAY_STORE is 'cache', but REPLAY_CACHE names {alias!r}, which is not in CACHES."
        errors.append(Error(message, hint=Hints.REPLAY_CACHE_UNKNOWN, id=Codes.REPLAY_CACHE_UNKNOWN))
    return errors


@register(Tags.security)
def check_values(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Every global setting that can be wrong, checked before the first request needs it."""
    return [*_number_errors(), *_choice_errors(), *_import_errors(), *_environment_errors()]


# ----------------------------------------------------------------------------
# Hooks that the flow never calls


#: djangosaml2 backend hooks saml_jit's flow never calls -> the saml_jit hook to use instead.
UNUSED_BACKEND_HOOKS = {
    "is_authorized": "Policy.authorize",
    "clean_attributes": "SAML_JIT['ATTRIBUTE_MAP'] (or Policy.populate_fields)",
    "get_or_create_user": "Policy.plan / Policy.populate_fields",
    "_update_user": "Policy.populate_fields",
    "update_user": "Policy.populate_fields",
    "configure_user": "Policy.populate_fields",
    "save_user": "Policy.populate_fields",
    "get_attribute_value": "SAML_JIT['ATTRIBUTE_MAP']",
    "clean_user_main_attribute": "SAML_JIT['SUBJECT_ATTRIBUTE'] (identities bind on IdP and subject)",
    "get_django_user_main_attribute": "SAML_JIT['SUBJECT_ATTRIBUTE'] (identities bind on IdP and subject)",
    "get_django_user_main_attribute_lookup": "SAML_JIT['SUBJECT_ATTRIBUTE'] (identities bind on IdP and subject)",
    "get_user_query_args": "SAML_JIT['SUBJECT_ATTRIBUTE'] (identities bind on IdP and subject)",
}


def _backend_classes() -> list[type]:
    from .backends import SamlJitBackend

    found = []
    for path in settings.AUTHENTICATION_BACKENDS:
        try:
            backend = import_string(path)
        except ImportError:
            continue
        if isinstance(backend, type) and issubclass(backend, SamlJitBackend) and backend is not SamlJitBackend:
            found.append(backend)
    return found


def _overridden(cls: type, base: type, name: str) -> bool:
    own = getattr(cls, name, None)
    return own is not None and own is not getattr(base, name, None)


@register(Tags.compatibility)
def check_hooks(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn about hooks a site overrides that saml_jit never calls, naming the one to use."""
    from .backends import SamlJitBackend

    warnings: list[CheckMessage] = []
    for backend in _backend_classes():
        for hook, replacement in UNUSED_BACKEND_HOOKS.items():
            if _overridden(backend, SamlJitBackend, hook):
                message = f"{backend.__qualname__}.{hook} is never called by saml_jit; use {replacement}."
                warnings.append(Warning(message, hint=Hints.BACKEND_HOOK_UNUSED, id=Codes.BACKEND_HOOK_UNUSED))
    warnings.extend(_policy_hook_warnings())
    if getattr(settings, "SAML_CONFIG_LOADER", None) == "saml_jit.spconfig.config_loader":
        message = "SAML_CONFIG_LOADER names saml_jit.spconfig.config_loader, which moved."
        warnings.append(Warning(message, hint=Hints.DEPRECATED_LOADER_PATH, id=Codes.DEPRECATED_LOADER_PATH))
    return warnings


def _policy_hook_warnings() -> list[CheckMessage]:
    try:
        policy = import_string(app_settings.POLICY)
    except ImportError:
        return []  # E007
    if isinstance(policy, type) and callable(getattr(policy, "populate_user", None)):
        message = f"{policy.__qualname__}.populate_user is never called by saml_jit."
        return [Warning(message, hint=Hints.POLICY_HOOK_UNUSED, id=Codes.POLICY_HOOK_UNUSED)]
    return []


# ----------------------------------------------------------------------------
# Where the error page's "Home" link goes


@register(Tags.urls)
def check_home_url(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``HOME_URL`` (else ``LOGIN_REDIRECT_URL``) must resolve, or people refused at sign-in are sent to ``/``."""
    if app_settings.HOME_URL:
        name, target = "HOME_URL", app_settings.HOME_URL
    else:
        name, target = "LOGIN_REDIRECT_URL", settings.LOGIN_REDIRECT_URL
    if not target:
        return []
    try:
        resolve_url(target)
    except NoReverseMatch:
        message = f"{name} ({target!r}) is not a URL and names no URL pattern; the error page links to '/' instead."
        return [Warning(message, hint=Hints.HOME_URL_UNRESOLVABLE, id=Codes.HOME_URL_UNRESOLVABLE)]
    except ImproperlyConfigured:  # a URLconf without patterns: Django's own URL checks report it
        pass
    return []


# ----------------------------------------------------------------------------
# No way around SSO


@register(Tags.security)
def check_password_backend(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    sso_only = sorted(
        e or "(all IdPs)" for e in ["", *_idp_entity_ids()] if not app_settings.for_idp(e).ALLOW_PASSWORD_LOGIN
    )
    if not sso_only or "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS:
        return []
    message = f"Password sign-in is off for {', '.join(sso_only)}, but Django's ModelBackend still accepts passwords."
    return [Warning(message, hint=Hints.SSO_BYPASS_BACKEND, id=Codes.SSO_BYPASS_BACKEND)]


# ----------------------------------------------------------------------------
# SCIM settings per IdP


@register(Tags.security)
def check_scim_idp_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``SCIM_SUBJECT_ATTRIBUTE`` and ``SCIM_USERNAME_FALLBACK`` under ``IDPS`` (the top level is checked above)."""
    errors: list[CheckMessage] = []
    allowed = _CHOICES["SCIM_SUBJECT_ATTRIBUTE"][0]
    for entity_id, overrides in app_settings.IDPS.items():
        overrides = overrides or {}
        value = overrides.get("SCIM_SUBJECT_ATTRIBUTE", allowed[0])
        if value not in allowed:
            message = (
                f"SCIM_SUBJECT_ATTRIBUTE for {entity_id} must be one of {', '.join(map(repr, allowed))}, not {value!r}."
            )
            hint = Hints.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN
            errors.append(Error(message, hint=hint, id=Codes.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN))
        fallback = overrides.get("SCIM_USERNAME_FALLBACK", False)
        if not isinstance(fallback, bool):
            message = f"SCIM_USERNAME_FALLBACK for {entity_id} must be True or False, not {fallback!r}."
            errors.append(Error(message, id=Codes.INVALID_SETTING))
    fallback = app_settings.raw.get("SCIM_USERNAME_FALLBACK", False)
    if not isinstance(fallback, bool):
        message = f"SAML_JIT['SCIM_USERNAME_FALLBACK'] must be True or False, not {fallback!r}."
        errors.append(Error(message, id=Codes.INVALID_SETTING))
    return errors


# --------------------------------------------------------------------------
# IdP metadata (SAML_JIT["METADATA"] and SAML_CONFIG's own)


@register(Tags.security)
def check_metadata(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Managed metadata: its settings, its last good copies, and the IdP certificates they carry.

    Reads only what is stored (the cache, the per-node files, ``SAML_CONFIG``'s
    inline and local metadata): a check run fetches nothing.
    """
    try:
        sources = managed_metadata.sources()
        store = managed_metadata.Store()
    except (ImproperlyConfigured, InvalidCacheBackendError) as exc:
        return [Error(str(exc), hint=Hints.METADATA_SETTING_INVALID, id=Codes.METADATA_SETTING_INVALID)]
    messages = [m for source in sources for m in _source_messages(source)]
    documents = [copy.xml for copy in map(_stored_copy(store), sources) if copy is not None]
    # SAML_CONFIG's own metadata: pysaml2 reports what it cannot read when it loads it.
    with contextlib.suppress(managed_metadata.MetadataRefused):
        documents += [xml for _, xml in configured_documents(_saml_config())]
    return messages + _certificate_warnings(documents)


def _stored_copy(store: managed_metadata.Store) -> Any:
    def get(source: managed_metadata.Source) -> managed_metadata.Copy | None:
        try:
            return store.get(source)
        except Exception:  # reported by _source_messages
            return None

    return get


def _source_messages(source: managed_metadata.Source) -> list[CheckMessage]:
    if source.cert and not os.path.isfile(source.cert):
        message = f"The metadata signer certificate {source.cert} of {source.label} is not a file."
        return [Error(message, hint=Hints.METADATA_SETTING_INVALID, id=Codes.METADATA_SETTING_INVALID)]
    try:
        copy = managed_metadata.Store().get(source)
    except Exception as exc:  # the cache's client errors differ per backend; a check must not crash
        message = f"The stored copy of the metadata at {source.label} cannot be read ({type(exc).__name__})."
        return [Warning(message, hint=Hints.METADATA_NOT_FETCHED, id=Codes.METADATA_NOT_FETCHED)]
    if copy is None:
        message = f"No good copy of the metadata at {source.label} has been fetched yet."
        return [Warning(message, hint=Hints.METADATA_NOT_FETCHED, id=Codes.METADATA_NOT_FETCHED)]
    if copy.expired(time.time()):
        message = f"The last good copy of the metadata at {source.label} has expired (validUntil)."
        return [Error(message, hint=Hints.METADATA_EXPIRED, id=Codes.METADATA_EXPIRED)]
    return []


def _certificate_warnings(documents: Iterable[bytes]) -> list[CheckMessage]:
    now = datetime.now(timezone.utc)
    days = app_settings.METADATA_CERT_WARNING_DAYS
    warnings: list[CheckMessage] = []
    for xml in documents:
        try:
            found = certificates(xml)
        except managed_metadata.MetadataRefused:
            continue
        for info in found:
            if info.role == "idp" and info.signs and info.expires_within(now, days):
                state = "has expired" if info.not_after <= now else f"expires on {info.not_after:%Y-%m-%d}"
                message = f"The signing certificate of IdP {info.entity_id} ({info.subject}) {state}."
                warnings.append(Warning(message, hint=Hints.IDP_CERT_EXPIRING, id=Codes.IDP_CERT_EXPIRING))
    return warnings
