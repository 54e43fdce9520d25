"""Benchmark settings: the test settings, plus stock djangosaml2 routes.

``DATABASE_URL`` picks the database (SQLite in memory by default).
"""

from tests.settings import *  # noqa: F403

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
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"level": "CRITICAL"}}
