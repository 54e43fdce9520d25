"""Benchmark settings: the test settings, plus stock djangosaml2 and django-allauth's SAML provider.

``DATABASE_URL`` picks the database (SQLite in memory by default; the login
benchmark wants a file, ``--db-file``, or PostgreSQL). The peers' packages
are in ``bench/requirements.txt``.
"""

import logging

from tests.federation import IDP_A, SP_CERT, SP_KEY
from tests.settings import *  # noqa: F403
from tests.settings import AUTHENTICATION_BACKENDS, INSTALLED_APPS, MIDDLEWARE, env

DEBUG = False
ROOT_URLCONF = "bench.urls"
# Stock djangosaml2 maps attributes itself (its own documented settings).
SAML_ATTRIBUTE_MAPPING = {
    "mail": ("email",),
    "givenName": ("first_name",),
    "sn": ("last_name",),
    "uid": ("username",),
}
SAML_USE_NAME_ID_AS_USERNAME = True
SAML_CREATE_UNKNOWN_USER = True
# ``python -m bench load`` runs one server per product, each with that product's backends.
AUTHENTICATION_BACKENDS = env.list("BENCH_AUTHENTICATION_BACKENDS", default=AUTHENTICATION_BACKENDS)
LOGGING: dict = {"version": 1, "disable_existing_loggers": True, "root": {"level": "CRITICAL"}}


class OneLine(logging.Formatter):
    """A log record on one line, its exception as type and first line (the load benchmark counts them)."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.getMessage().replace("\n", " ")
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            first = (str(exc).splitlines() or [""])[0][:200]
            line += f" [{type(exc).__module__}.{type(exc).__qualname__}: {first}]"
        return f"BENCH-LOG {record.name}: {line}"


if env.bool("BENCH_SERVER_ERRORS", default=False):  # python -m bench load: the servers' errors, to stderr
    LOGGING["formatters"] = {"one_line": {"()": OneLine}}
    LOGGING["handlers"] = {"stderr": {"class": "logging.StreamHandler", "formatter": "one_line"}}
    LOGGING["loggers"] = {
        name: {"handlers": ["stderr"], "level": "ERROR", "propagate": False} for name in ("saml_jit", "django")
    }

# django-allauth's SAML provider, configured from settings (no SocialApp row):
# the same IdP key, both signatures required, strict (destination, recipient,
# audience, validity), the SP key for encrypted assertions.
INSTALLED_APPS = [
    *INSTALLED_APPS,
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.saml",
]
MIDDLEWARE = [*MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
ACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_LOGIN_ON_GET = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
ALLAUTH_ORG = "bench"


def _pem_body(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _idp_cert() -> str:
    return _pem_body(IDP_A.cert_file)


SOCIALACCOUNT_PROVIDERS = {
    "saml": {
        "APPS": [
            {
                "client_id": ALLAUTH_ORG,
                "name": "bench IdP",
                "settings": {
                    "attribute_mapping": {
                        "email": "urn:oid:0.9.2342.19200300.100.1.3",
                        "first_name": "urn:oid:2.5.4.42",
                        "last_name": "urn:oid:2.5.4.4",
                    },
                    "idp": {
                        "entity_id": IDP_A.entity_id,
                        "sso_url": IDP_A.sso_redirect_url,
                        "x509cert": _idp_cert(),
                    },
                    "advanced": {
                        "strict": True,
                        "allow_single_label_domains": True,  # "testserver", as the other two use
                        "want_assertion_signed": True,
                        "want_message_signed": True,
                        "reject_idp_initiated_sso": True,
                        "x509cert": _pem_body(str(SP_CERT)),
                        "private_key": _pem_body(str(SP_KEY)),
                    },
                },
            }
        ]
    }
}
