"""Settings for the test-suite.

``DATABASE_URL`` picks the database (SQLite in memory by default; CI runs the
suite again on PostgreSQL); ``CACHE_URL`` the cache.
"""

from __future__ import annotations

from pathlib import Path

import environ

env = environ.Env()

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djangosaml2",
    "saml_jit",
]
AUTH_USER_MODEL = env.str("AUTH_USER_MODEL", default="auth.User")
if AUTH_USER_MODEL != "auth.User":
    INSTALLED_APPS.append("tests.custom_user")

MIDDLEWARE = [
    # djangosaml2's SAML session, answering a failed save with 503 (never 400); before SessionMiddleware.
    "saml_jit.middleware.SamlSessionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "saml_jit.backends.SamlJitBackend",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_REDIRECT_URL = "/"
SAML_SESSION_COOKIE_NAME = "saml_session"

# Keys are generated at run time into tests/.keys/ (never committed).
from tests.federation import saml_config  # noqa: E402

SAML_CONFIG = saml_config()
SAML_JIT: dict = {}
SAML_CSP_HANDLER = ""
