"""Settings for the saml_jit demo project.

Everything configurable comes from the environment (or a ``.env`` file at the
repository root); ``.env.example`` lists every variable. Run-time state —
database, generated keys, the development secret key — lives in
``demo_project/var/``, which git ignores.

By default the site trusts saml_jit's development IdP
(``saml_jit.contrib.devidp``, at ``/devidp/``), the same app any project can
switch on. Set ``SAML_IDP_METADATA_FILE`` or ``SAML_IDP_METADATA_URL`` to use
a real IdP instead; the development IdP is then not installed at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
import saml2
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from saml_jit.config import saml_config
from saml_jit.contrib import devidp
from saml_jit.contrib.devidp import persons as devidp_persons

BASE_DIR = Path(__file__).resolve().parent.parent  # the repository root
# DEMO_VAR_DIR moves it (the browser tests run a demo of their own in a temporary folder).
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR") or BASE_DIR / "demo_project" / "var")

env = environ.Env(
    # The demo is meant to be run locally with one command, hence DEBUG on by
    # default; set DEBUG=false (and SECRET_KEY) for anything others can reach.
    DEBUG=(bool, True),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
    SESSION_COOKIE_SECURE=(bool, False),
    DEMO_BASE_URL=(str, "http://localhost:8000"),
    LOG_LEVEL=(str, "INFO"),
)
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")  # never overrides real environment variables

DEBUG = env("DEBUG")


def _private_file(path: Path, content: str) -> None:
    # 0600 from the start, and O_EXCL so a concurrent first start keeps the
    # file the other process wrote instead of replacing it.
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(content)


def _secret_key() -> str:
    # Never a default in code: from the environment, or — for local DEBUG
    # runs only — generated once and kept in the ignored var/ folder.
    if key := env.str("SECRET_KEY", default=""):
        return key
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (see .env.example); it is only generated when DEBUG is on.")
    path = VAR_DIR / "secret_key"
    _private_file(path, get_random_secret_key())
    return path.read_text().strip()


SECRET_KEY = _secret_key()

DEMO_BASE_URL = env("DEMO_BASE_URL").rstrip("/")
ALLOWED_HOSTS = [*env("ALLOWED_HOSTS"), urlsplit(DEMO_BASE_URL).hostname or "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djangosaml2",
    "saml_jit",
    "demo_project",  # its demo_setup command
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Keeps djangosaml2's outstanding-request state in its own cookie; a
    # session store failing while it saves is answered 503, never 400 (it
    # must come before SessionMiddleware to cover Django's session too).
    "saml_jit.middleware.SamlSessionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Takes away privileges whose time to live has passed (JIT privilege).
    "saml_jit.middleware.GrantExpiryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "demo_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR}/db.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # sqlite does not create the folder
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "saml_jit.backends.SamlJitBackend",
]
LOGIN_URL = "/saml2/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

SESSION_COOKIE_SECURE = env("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --------------------------------------------------------------------------
# SAML (djangosaml2 + pysaml2): this site is the SP.

# `manage.py saml_jit_keys` (run by demo_setup) writes the SP's keys here.
DEMO_KEYS_DIR = VAR_DIR / "keys"
SAML_SP_ENTITY_ID = env.str("SAML_SP_ENTITY_ID", default=f"{DEMO_BASE_URL}/saml2/metadata/")
SAML_IDP_METADATA_FILE = env.str("SAML_IDP_METADATA_FILE", default="")
SAML_IDP_METADATA_URL = env.str("SAML_IDP_METADATA_URL", default="")
# Trust (and install) the development IdP only when no real IdP is configured.
DEMO_IDP_TRUSTED = not (SAML_IDP_METADATA_FILE or SAML_IDP_METADATA_URL)
if DEMO_IDP_TRUSTED:
    INSTALLED_APPS.append("saml_jit.contrib.devidp")

SAML_CONFIG = saml_config(
    base_url=DEMO_BASE_URL,
    entity_id=SAML_SP_ENTITY_ID,
    keys_dir=DEMO_KEYS_DIR,
    # Its key is kept next to the SP's, so restarts and several processes agree.
    idp_metadata_xml=devidp.metadata(DEMO_BASE_URL, keys_dir=DEMO_KEYS_DIR) if DEMO_IDP_TRUSTED else None,
    idp_metadata_file=SAML_IDP_METADATA_FILE or None,
    idp_metadata_url=SAML_IDP_METADATA_URL or None,
    name="saml_jit demo",
)
# The people the development IdP offers: its built-in three, and dave, whose
# email domain ALLOWED_EMAIL_DOMAINS refuses (to show a denial and its event).
SAML_DEVIDP_PERSONS = [
    *devidp_persons.DEFAULT_PERSONS,
    {
        "key": "dave",
        "name_id": "d4ve0000-1c2b-4f00-9a1e-da7e00000004",
        "attributes": {
            "uid": ["dave"],
            "mail": ["dave@partner.example"],
            "givenName": ["Dave"],
            "sn": ["Denied"],
            "displayName": ["Dave Denied"],
        },
        "groups": ["engineering"],
        "description": "From a partner domain the demo does not allow: denied (email_domain_not_allowed).",
    },
]
SAML_SESSION_COOKIE_NAME = "saml_session"
# The IdP's POST to the ACS is cross-site with a real IdP: the SAML session
# cookie then needs SameSite=None, which browsers only accept with Secure.
# Over plain http (the local demo, same site as its IdP) Lax works and None
# would be dropped.
SAML_SESSION_COOKIE_SAMESITE = env.str(
    "SAML_SESSION_COOKIE_SAMESITE", default="None" if SESSION_COOKIE_SECURE else "Lax"
)
# djangosaml2 can add a Content-Security-Policy through django-csp; the demo
# adds none (set one in production, e.g. at the reverse proxy). '' silences
# djangosaml2's start-up warning about it.
SAML_CSP_HANDLER = ""
# djangosaml2's own views (if mounted) use saml_jit's cached configuration and
# in-process crypto too; saml_jit.urls' views always do.
SAML_CONFIG_LOADER = "saml_jit.saml.config.config_loader"
SAML_DEFAULT_BINDING = saml2.BINDING_HTTP_REDIRECT
SAML_LOGOUT_REQUEST_PREFERRED_BINDING = saml2.BINDING_HTTP_REDIRECT

# --------------------------------------------------------------------------
# saml_jit (see the README's configuration table for every setting)
SAML_JIT: dict = {
    # The demo IdP sends isMemberOf values; map them onto Django groups.
    "GROUP_MAP": {
        "engineering": ["Engineering"],
        "sales": ["Sales"],
        "admins": ["Administrators"],
    },
    "CREATE_GROUPS": True,
    # dave (partner.example) is refused: no account, one "denied" event.
    "ALLOWED_EMAIL_DOMAINS": ["example.org"],
    # Members of "admins" get staff status (never superuser: ALLOW_SUPERUSER
    # stays off); it and the Administrators group expire unless re-asserted.
    # demo_setup gives Administrators the saml_jit view permissions, so alice
    # can review events, identities and grants in the admin.
    "STAFF_GROUPS": ["admins"],
    "PRIVILEGED_GROUPS": ["Administrators"],
    "PRIVILEGE_TTL": env.int("SAML_JIT_PRIVILEGE_TTL", default=8 * 3600),
    # Keep the groups and email the IdP sent on each event, for the demo's
    # review pages (the default stores no attribute values at all).
    "EVENT_ATTRIBUTES": ["isMemberOf", "mail"],
}

# --------------------------------------------------------------------------
# Logging: pysaml2 and djangosaml2 log whole assertions (attribute values,
# i.e. personal data) at DEBUG, so they stay at WARNING whatever LOG_LEVEL is.

# Every line once: Django's own console handler on "django" is replaced by
# none (its records reach the root handler below), so a request's line is not
# printed twice with DEBUG on.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[{asctime}] {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL")},
    "loggers": {
        "django": {"handlers": [], "level": "INFO"},
        "saml2": {"level": "WARNING"},
        "djangosaml2": {"level": "WARNING"},
    },
}
