"""Tests for :mod:`saml_jit.checks`: one test per check id, bad and good.

The check functions are called directly under overridden settings; nothing
here touches the database.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.checks import ERROR
from django.test import override_settings

from saml_jit.backends import SamlJitBackend
from saml_jit.checks import (
    EXPIRY_MIDDLEWARE,
    SAML_SESSION_MIDDLEWARE,
    Codes,
    Hints,
    check_installation,
    check_saml_config,
    check_settings,
    check_sp_setup,
)
from saml_jit.config import saml_config
from saml_jit.middleware import SamlSessionMiddleware
from tests.federation import SP_CERT, SP_KEY

IDP = "https://idp.example.org/idp/shibboleth"
OTHER_IDP = "https://login.partner.example/saml"
EMAIL_NAMEID = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
SUBJECT_ID = "urn:oasis:names:tc:SAML:attribute:subject-id"


class SiteBackend(SamlJitBackend):
    """A site's subclass of the saml_jit backend."""


def sp(**options) -> dict:
    options.setdefault("want_assertions_signed", True)
    keys = {"key_file": str(SP_KEY), "cert_file": str(SP_CERT)}
    return {"entityid": "https://sp.example.org/saml2/metadata/", "service": {"sp": options}, **keys}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def all_ids() -> list[str]:
    return ids([*check_installation(), *check_settings(), *check_saml_config(), *check_sp_setup()])


@pytest.fixture(autouse=True)
def good_configuration():
    """A configuration no check complains about; each test spoils one thing."""
    with override_settings(SAML_JIT={}, SAML_CONFIG=sp(), SAML_SESSION_COOKIE_SAMESITE="Lax"):
        yield


def test_good_configuration_is_silent():
    assert all_ids() == []


def test_every_code_is_unique_and_namespaced():
    codes = [value for name, value in vars(Codes).items() if not name.startswith("_")]
    assert len(codes) == len(set(codes))
    assert all(code.startswith(("saml_jit.E", "saml_jit.W")) for code in codes)


def test_every_code_has_a_hint():
    names = {name for name in vars(Codes) if not name.startswith("_")}
    # INVALID_SETTING's message says what is allowed; every other code has a hint.
    assert names - {"INVALID_SETTING"} <= set(vars(Hints))


# ------------------------------------------------------------ E001, E002


class TestInstallation:
    def test_e001_djangosaml2_missing(self):
        apps = [app for app in django_settings.INSTALLED_APPS if app != "djangosaml2"]
        with override_settings(INSTALLED_APPS=apps):
            messages = check_installation()
        assert ids(messages) == [Codes.DJANGOSAML2_MISSING]
        assert messages[0].hint == Hints.DJANGOSAML2_MISSING

    def test_e001_silent_when_installed(self):
        assert "djangosaml2" in django_settings.INSTALLED_APPS
        assert Codes.DJANGOSAML2_MISSING not in ids(check_installation())

    @override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"])
    def test_e002_backend_missing(self):
        messages = check_installation()
        assert ids(messages) == [Codes.BACKEND_MISSING]
        assert messages[0].hint == Hints.BACKEND_MISSING

    @override_settings(AUTHENTICATION_BACKENDS=["djangosaml2.backends.Saml2Backend"])
    def test_e002_plain_djangosaml2_backend_is_not_enough(self):
        assert ids(check_installation()) == [Codes.BACKEND_MISSING]

    @override_settings(AUTHENTICATION_BACKENDS=["no.such.Backend"])
    def test_e002_unimportable_backend(self):
        assert ids(check_installation()) == [Codes.BACKEND_MISSING]

    @pytest.mark.parametrize("backend", ["saml_jit.backends.SamlJitBackend", f"{__name__}.SiteBackend"])
    def test_e002_silent_with_backend_or_subclass(self, backend):
        with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend", backend]):
            assert ids(check_installation()) == []


# ------------------------------------------------------------ W008, W009

STOCK_SAML_SESSION = "djangosaml2.middleware.SamlSessionMiddleware"


class SiteSamlSessionMiddleware(SamlSessionMiddleware):
    """A site's subclass of saml_jit's SAML-session middleware."""


def _without_saml_session(middleware=None) -> list[str]:
    return [m for m in (middleware or django_settings.MIDDLEWARE) if m != SAML_SESSION_MIDDLEWARE]


class TestSessionMiddleware:
    def test_w008_stock_djangosaml2_middleware(self):
        with override_settings(MIDDLEWARE=[*_without_saml_session(), STOCK_SAML_SESSION]):
            messages = check_installation()
        assert ids(messages) == [Codes.SAML_SESSION_MIDDLEWARE_MISSING]
        assert messages[0].hint == Hints.SAML_SESSION_MIDDLEWARE_MISSING

    def test_w008_no_saml_session_middleware(self):
        with override_settings(MIDDLEWARE=_without_saml_session()):
            assert ids(check_installation()) == [Codes.SAML_SESSION_MIDDLEWARE_MISSING]

    def test_w009_after_session_middleware(self):
        with override_settings(MIDDLEWARE=[*_without_saml_session(), SAML_SESSION_MIDDLEWARE]):
            messages = check_installation()
        assert ids(messages) == [Codes.SAML_SESSION_MIDDLEWARE_ORDER]
        assert messages[0].hint == Hints.SAML_SESSION_MIDDLEWARE_ORDER

    @pytest.mark.parametrize("path", [SAML_SESSION_MIDDLEWARE, f"{__name__}.SiteSamlSessionMiddleware"])
    def test_silent_before_session_middleware(self, path):
        assert django_settings.MIDDLEWARE.index(SAML_SESSION_MIDDLEWARE) == 0
        with override_settings(MIDDLEWARE=[path, *_without_saml_session()]):
            assert ids(check_installation()) == []


# ------------------------------------------------------- E003 … E007


class TestSettings:
    @pytest.mark.parametrize("field", ["is_superuser", "is_staff", "is_active", "password", "groups"])
    def test_e003_dangerous_attribute_map(self, field):
        with override_settings(SAML_JIT={"ATTRIBUTE_MAP": {"email": "mail", field: "role"}}):
            messages = check_settings()
        assert ids(messages) == [Codes.DANGEROUS_ATTRIBUTE_MAP]
        assert field in messages[0].msg
        assert messages[0].hint == Hints.DANGEROUS_ATTRIBUTE_MAP

    @override_settings(SAML_JIT={"IDPS": {IDP: {"ATTRIBUTE_MAP": {"is_staff": "staff"}}}})
    def test_e003_per_idp(self):
        messages = check_settings()
        assert ids(messages) == [Codes.DANGEROUS_ATTRIBUTE_MAP]
        assert IDP in messages[0].msg

    @override_settings(SAML_JIT={"ATTRIBUTE_MAP": {"email": "mail", "first_name": "givenName"}})
    def test_e003_silent(self):
        assert ids(check_settings()) == []

    @override_settings(SAML_JIT={"CREATE_USER": False})
    def test_e004_unknown_top_level_setting(self):
        messages = check_settings()
        assert ids(messages) == [Codes.UNKNOWN_SETTING]
        assert "CREATE_USER" in messages[0].msg

    @override_settings(SAML_JIT={"IDPS": {IDP: {"LINK_BY_MAIL": True}}})
    def test_e004_unknown_per_idp_setting(self):
        messages = check_settings()
        assert ids(messages) == [Codes.UNKNOWN_SETTING]
        assert "LINK_BY_MAIL" in messages[0].msg

    @override_settings(SAML_JIT={"IDPS": {IDP: {"POLICY": "saml_jit.policy.Policy"}}})
    def test_e004_global_only_setting_inside_idp_block(self):
        assert ids(check_settings()) == [Codes.UNKNOWN_SETTING]

    @override_settings(
        SAML_JIT={"CREATE_USERS": False, "POLICY": "saml_jit.policy.Policy", "IDPS": {IDP: {"LINK_BY_EMAIL": True}}}
    )
    def test_e004_silent(self):
        assert ids(check_settings()) == []

    @override_settings(SAML_JIT={"SYNC": {"first_name": "sometimes"}})
    def test_e005_bad_sync_mode(self):
        messages = check_settings()
        assert ids(messages) == [Codes.INVALID_SETTING]
        assert "first_name" in messages[0].msg

    @override_settings(SAML_JIT={"IDPS": {IDP: {"USERNAME_SOURCE": "email"}}})
    def test_e005_bad_username_source(self):
        messages = check_settings()
        assert ids(messages) == [Codes.INVALID_SETTING]
        assert "USERNAME_SOURCE" in messages[0].msg

    @pytest.mark.parametrize("source", ["email_localpart", "attribute", "subject"])
    def test_e005_silent(self, source):
        with override_settings(
            SAML_JIT={"SYNC": {"first_name": "on_create", "email": "always"}, "USERNAME_SOURCE": source}
        ):
            assert ids(check_settings()) == []

    @override_settings(SAML_JIT={"ATTRIBUTE_MAP": {"email": "mail", "nickname": "nick"}})
    def test_e006_unknown_user_field(self):
        messages = check_settings()
        assert ids(messages) == [Codes.UNKNOWN_USER_FIELD]
        assert "nickname" in messages[0].msg
        assert messages[0].hint == Hints.UNKNOWN_USER_FIELD

    def test_e006_silent(self):
        # Works for auth.User and the email-keyed custom user model alike.
        username_field = get_user_model().USERNAME_FIELD
        with override_settings(SAML_JIT={"ATTRIBUTE_MAP": {"email": "mail", username_field: "uid", "last_name": "sn"}}):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize("path", ["saml_jit.policy.NoSuchPolicy", "no_such_module.Policy", "nodots"])
    def test_e007_policy_import(self, path):
        with override_settings(SAML_JIT={"POLICY": path}):
            messages = check_settings()
        assert ids(messages) == [Codes.POLICY_IMPORT]
        assert messages[0].hint == Hints.POLICY_IMPORT

    @override_settings(SAML_JIT={"POLICY": "saml_jit.policy.Policy"})
    def test_e007_silent(self):
        assert ids(check_settings()) == []


# ------------------------------------------------------ E009, W003, W004


class TestGroupSettings:
    @override_settings(SAML_JIT={"IDPS": {IDP: {"GROUP_PATTERN": "app-(admins"}}})
    def test_e009_invalid_group_pattern(self):
        messages = check_settings()
        assert ids(messages) == [Codes.INVALID_GROUP_PATTERN]
        assert IDP in messages[0].msg
        assert messages[0].hint == Hints.INVALID_GROUP_PATTERN

    @override_settings(SAML_JIT={"IDPS": {IDP: {"GROUP_PATTERN": r"app-[a-z]+"}}})
    def test_e009_silent(self):
        assert ids(check_settings()) == []

    @override_settings(SAML_JIT={"IDPS": {IDP: {"ALLOW_SUPERUSER": True, "PRIVILEGE_TTL": None}}})
    def test_w003_superuser_allowed(self):
        messages = check_settings()
        assert ids(messages) == [Codes.SUPERUSER_ALLOWED]
        assert messages[0].hint == Hints.SUPERUSER_ALLOWED

    @override_settings(SAML_JIT={"SUPERUSER_GROUPS": ["admins"], "PRIVILEGE_TTL": None})
    def test_w003_silent_without_allow_superuser(self):
        assert ids(check_settings()) == []

    @pytest.mark.parametrize(
        "options",
        [
            {"STAFF_GROUPS": ["staff"]},
            {"PRIVILEGED_GROUPS": ["editors"], "PRIVILEGE_TTL": 60},
        ],
    )
    def test_w004_expiring_privileges_without_middleware(self, options):
        assert EXPIRY_MIDDLEWARE not in django_settings.MIDDLEWARE
        with override_settings(SAML_JIT={"IDPS": {IDP: options}}):
            messages = check_settings()
        assert ids(messages) == [Codes.EXPIRY_MIDDLEWARE_MISSING]
        assert messages[0].hint == Hints.EXPIRY_MIDDLEWARE_MISSING

    def test_w004_silent_with_middleware(self):
        middleware = [*django_settings.MIDDLEWARE, EXPIRY_MIDDLEWARE]
        with override_settings(MIDDLEWARE=middleware, SAML_JIT={"STAFF_GROUPS": ["staff"]}):
            assert ids(check_settings()) == []

    @override_settings(SAML_JIT={"STAFF_GROUPS": ["staff"], "PRIVILEGE_TTL": None})
    def test_w004_silent_without_expiry(self):
        assert ids(check_settings()) == []


# ------------------------------------------------------ E008, W001, W002


class TestSamlConfig:
    @pytest.mark.parametrize(
        "options",
        [
            {"want_assertions_signed": False, "want_response_signed": False},
            {"want_assertions_signed": False, "want_response_signed": False, "allow_unknown_attributes": True},
        ],
    )
    def test_e008_unsigned(self, options):
        with override_settings(SAML_CONFIG=sp(**options)):
            messages = check_saml_config()
        assert ids(messages) == [Codes.UNSIGNED_ASSERTIONS]
        assert messages[0].hint == Hints.UNSIGNED_ASSERTIONS

    @pytest.mark.parametrize(
        "options",
        [
            {"want_assertions_signed": True},
            {"want_assertions_signed": True, "want_response_signed": False},
            {"want_assertions_signed": False, "want_response_signed": True},
        ],
    )
    def test_e008_silent(self, options):
        with override_settings(SAML_CONFIG=sp(**options)):
            assert ids(check_saml_config()) == []

    @override_settings(SAML_CONFIG={})
    def test_e008_silent_without_saml_config(self):
        assert ids(check_saml_config()) == []

    def test_e008_pysaml2_defaults_response_unsigned(self):
        with override_settings(SAML_CONFIG={"service": {"sp": {"want_response_signed": False}}}):
            assert ids(check_saml_config()) == [Codes.UNSIGNED_ASSERTIONS]

    def test_e008_pysaml2_defaults_response_signed(self):
        with override_settings(SAML_CONFIG={"service": {"sp": {"want_assertions_signed": False}}}):
            assert ids(check_saml_config()) == []

    def test_e008_assertions_or_response_signed(self):
        options = {
            "want_assertions_signed": False,
            "want_response_signed": False,
            "want_assertions_or_response_signed": True,
        }
        with override_settings(SAML_CONFIG=sp(**options)):
            assert ids(check_saml_config()) == []

    @override_settings(SAML_CONFIG=sp(allow_unsolicited=True))
    def test_e010_unsolicited_globally(self):
        messages = check_saml_config()
        assert ids(messages) == [Codes.UNSOLICITED_GLOBAL]
        assert messages[0].hint == Hints.UNSOLICITED_GLOBAL
        assert messages[0].level == ERROR

    @override_settings(SAML_CONFIG=sp(), SAML_JIT={"IDPS": {IDP: {"ALLOW_IDP_INITIATED": True}}})
    def test_w002_idp_initiated_for_one_idp(self):
        messages = check_saml_config()
        assert ids(messages) == [Codes.IDP_INITIATED]
        assert messages[0].hint == Hints.IDP_INITIATED
        assert IDP in messages[0].msg

    @override_settings(SAML_CONFIG=sp(allow_unsolicited=False))
    def test_w002_silent(self):
        assert ids(check_saml_config()) == []

    @override_settings(
        SAML_JIT={"SUBJECT_ATTRIBUTE": "mail", "IDPS": {IDP: {}, OTHER_IDP: {}}},
    )
    def test_w001_email_subject_attribute_with_several_idps(self):
        messages = check_saml_config()
        assert ids(messages) == [Codes.EMAIL_SUBJECT_MULTI_IDP]
        assert messages[0].hint == Hints.EMAIL_SUBJECT_MULTI_IDP

    @override_settings(SAML_JIT={"IDPS": {IDP: {"SUBJECT_ATTRIBUTE": "EmailAddress"}, OTHER_IDP: {}}})
    def test_w001_per_idp_subject_attribute_case_insensitive(self):
        assert ids(check_saml_config()) == [Codes.EMAIL_SUBJECT_MULTI_IDP]

    def test_w001_email_name_id_with_several_metadata_sources(self):
        config = sp(name_id_format=EMAIL_NAMEID)
        config["metadata"] = {"local": ["idp1.xml", "idp2.xml"]}
        with override_settings(SAML_CONFIG=config):
            assert ids(check_saml_config()) == [Codes.EMAIL_SUBJECT_MULTI_IDP]

    def test_w001_silent_with_one_idp(self):
        config = sp(name_id_format=EMAIL_NAMEID)
        config["metadata"] = {"local": ["idp1.xml"]}
        with override_settings(SAML_CONFIG=config, SAML_JIT={"SUBJECT_ATTRIBUTE": "mail", "IDPS": {IDP: {}}}):
            assert ids(check_saml_config()) == []

    def test_w001_silent_with_stable_subjects(self):
        config = sp(name_id_format=PERSISTENT)
        config["metadata"] = {"local": ["idp1.xml"], "remote": [{"url": "https://idp2.example/md"}]}
        with override_settings(
            SAML_CONFIG=config, SAML_JIT={"SUBJECT_ATTRIBUTE": SUBJECT_ID, "IDPS": {IDP: {}, OTHER_IDP: {}}}
        ):
            assert ids(check_saml_config()) == []

    def test_w001_email_name_id_format_as_list(self):
        config = sp(name_id_format=[EMAIL_NAMEID])
        with override_settings(SAML_CONFIG=config, SAML_JIT={"IDPS": {IDP: {}, OTHER_IDP: {}}}):
            assert ids(check_saml_config()) == [Codes.EMAIL_SUBJECT_MULTI_IDP]


# --------------------------------------------------------------------------
# E011: the replay record needs a conditional unique constraint


def test_replay_store_needs_partial_indexes(monkeypatch):
    from django.db import connection

    monkeypatch.setattr(type(connection.features), "supports_partial_indexes", False)  # as on MySQL/MariaDB
    assert all_ids() == [Codes.REPLAY_STORE_UNSUPPORTED]
    with override_settings(SAML_JIT={"REPLAY_STORE": "cache"}):
        assert all_ids() == []


def test_replay_store_supported_here():
    from django.db import connection

    assert connection.features.supports_partial_indexes
    assert Codes.REPLAY_STORE_UNSUPPORTED not in all_ids()


# --------------------------------------------------------------------------
# E005, E012-E016: every global setting that can be wrong, at start-up


from saml_jit.checks import check_hooks, check_values  # noqa: E402
from saml_jit.policy import Policy  # noqa: E402


class TestValues:
    def test_good_values_are_silent(self):
        assert ids(check_values()) == []

    def test_e012_unknown_crypto_backend(self):
        with override_settings(SAML_JIT={"CRYPTO_BACKEND": "openssl"}):
            messages = check_values()
        assert ids(messages) == [Codes.CRYPTO_BACKEND_UNKNOWN]
        assert messages[0].hint == Hints.CRYPTO_BACKEND_UNKNOWN and "'openssl'" in messages[0].msg

    def test_e013_unknown_scim_subject_attribute(self):
        with override_settings(SAML_JIT={"SCIM_SUBJECT_ATTRIBUTE": "email"}):
            messages = check_values()
        assert ids(messages) == [Codes.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN]
        assert messages[0].hint == Hints.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN

    def test_e005_unknown_replay_store(self):
        with override_settings(SAML_JIT={"REPLAY_STORE": "redis"}):
            assert ids(check_values()) == [Codes.INVALID_SETTING]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("MAX_RESPONSE_SIZE", 0),
            ("MAX_RESPONSE_SIZE", "512k"),
            ("CLOCK_SKEW", -1),
            ("MAX_RESPONSE_AGE", True),
            ("SCIM_PAGE_SIZE", 0),
            ("SCIM_MAX_BODY", 1.5),
            ("SCIM_REFUSAL_EVENT_INTERVAL", -5),
            ("CONFIG_MAX_AGE", "an hour"),
            ("CONFIG_RETRY", -1),
        ],
    )
    def test_e005_bad_numbers(self, name, value):
        with override_settings(SAML_JIT={name: value}):
            messages = check_values()
        assert ids(messages) == [Codes.INVALID_SETTING]
        assert name in messages[0].msg

    @pytest.mark.parametrize(("name", "value"), [("CONFIG_MAX_AGE", None), ("CLOCK_SKEW", 0), ("CONFIG_RETRY", 0.5)])
    def test_good_numbers(self, name, value):
        with override_settings(SAML_JIT={name: value}):
            assert ids(check_values()) == []

    def test_e014_error_template_missing(self):
        with override_settings(SAML_JIT={"ERROR_TEMPLATE": "site/no-such-page.html"}):
            messages = check_values()
        assert ids(messages) == [Codes.ERROR_TEMPLATE_MISSING]
        assert messages[0].hint == Hints.ERROR_TEMPLATE_MISSING

    @pytest.mark.parametrize("name", ["CONFIG_LOADER", "CONFIG_CACHE_KEY"])
    def test_e015_import_failed(self, name):
        with override_settings(SAML_JIT={name: "site.no_such_module.loader"}):
            messages = check_values()
        assert ids(messages) == [Codes.IMPORT_FAILED]
        assert messages[0].hint == Hints.IMPORT_FAILED
        with override_settings(SAML_JIT={name: "saml_jit.conf.DEFAULT_ATTRIBUTE_MAP"}):  # importable, not callable
            assert ids(check_values()) == [Codes.IMPORT_FAILED]
        with override_settings(SAML_JIT={name: "saml_jit.saml.config.config_loader"}):
            assert ids(check_values()) == []

    def test_e016_replay_cache_unknown(self):
        with override_settings(SAML_JIT={"REPLAY_STORE": "cache", "REPLAY_CACHE": "replay"}):
            messages = check_values()
        assert ids(messages) == [Codes.REPLAY_CACHE_UNKNOWN]
        assert messages[0].hint == Hints.REPLAY_CACHE_UNKNOWN
        with override_settings(SAML_JIT={"REPLAY_STORE": "cache", "REPLAY_CACHE": "default"}):
            assert ids(check_values()) == []


# --------------------------------------------------------------------------
# W005-W007: hooks saml_jit never calls, a moved loader path


class HookedBackend(SamlJitBackend):
    def is_authorized(self, *args, **kwargs):
        return False

    def _update_user(self, *args, **kwargs):
        return None


class LegacyPolicy(Policy):
    def populate_user(self, request, user, profile, plan):
        user.first_name = "never called"


class TestHooks:
    def test_silent_by_default(self):
        with override_settings(AUTHENTICATION_BACKENDS=[f"{__name__}.SiteBackend"]):
            assert ids(check_hooks()) == []

    def test_w005_backend_hook_never_called(self):
        with override_settings(AUTHENTICATION_BACKENDS=[f"{__name__}.HookedBackend"]):
            messages = check_hooks()
        assert ids(messages) == [Codes.BACKEND_HOOK_UNUSED, Codes.BACKEND_HOOK_UNUSED]
        assert messages[0].hint == Hints.BACKEND_HOOK_UNUSED
        assert "HookedBackend.is_authorized" in messages[0].msg and "Policy.authorize" in messages[0].msg
        assert "HookedBackend._update_user" in messages[1].msg and "Policy.populate_fields" in messages[1].msg

    def test_w006_policy_populate_user_never_called(self):
        with override_settings(SAML_JIT={"POLICY": f"{__name__}.LegacyPolicy"}):
            messages = check_hooks()
        assert ids(messages) == [Codes.POLICY_HOOK_UNUSED]
        assert messages[0].hint == Hints.POLICY_HOOK_UNUSED

    def test_w007_loader_path_moved(self):
        with override_settings(SAML_CONFIG_LOADER="saml_jit.spconfig.config_loader"):
            messages = check_hooks()
        assert ids(messages) == [Codes.DEPRECATED_LOADER_PATH]
        assert messages[0].hint == Hints.DEPRECATED_LOADER_PATH
        with override_settings(SAML_CONFIG_LOADER="saml_jit.saml.config.config_loader"):
            assert ids(check_hooks()) == []


class TestScimIdpSettings:
    """Per-IdP SCIM settings (``check_scim_idp_settings``)."""

    IDP = "https://idp.example.org/metadata"

    def run(self, **overrides):
        from saml_jit.checks import check_scim_idp_settings

        with override_settings(SAML_JIT=overrides):
            return check_scim_idp_settings()

    def test_good_values_are_silent(self):
        okta = {"SCIM_SUBJECT_ATTRIBUTE": "userName", "SCIM_USERNAME_FALLBACK": False}
        assert ids(self.run(IDPS={self.IDP: okta}, SCIM_USERNAME_FALLBACK=True)) == []

    def test_e013_unknown_scim_subject_attribute_for_an_idp(self):
        messages = self.run(IDPS={self.IDP: {"SCIM_SUBJECT_ATTRIBUTE": "mail"}})
        assert ids(messages) == [Codes.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN]
        assert messages[0].hint == Hints.SCIM_SUBJECT_ATTRIBUTE_UNKNOWN and self.IDP in messages[0].msg

    @pytest.mark.parametrize("where", ["idp", "top"])
    def test_e005_username_fallback_not_a_boolean(self, where):
        value = {"SCIM_USERNAME_FALLBACK": "yes"}
        messages = self.run(IDPS={self.IDP: value}) if where == "idp" else self.run(**value)
        assert ids(messages) == [Codes.INVALID_SETTING]
        assert "SCIM_USERNAME_FALLBACK" in messages[0].msg


# ------------------------------------------------------------ E017, E018, W011: an SP that can start a login


class TestSpSetup:
    @pytest.mark.parametrize("config", [{}, None, {"entityid": "https://sp.example.org/"}])
    def test_e017_empty_saml_config(self, config):
        with override_settings(SAML_CONFIG=config):
            assert ids(check_sp_setup()) == [Codes.SAML_CONFIG_EMPTY]

    def test_e017_when_the_setting_is_absent(self):
        with override_settings():
            del django_settings.SAML_CONFIG
            assert ids(check_sp_setup()) == [Codes.SAML_CONFIG_EMPTY]

    def test_e018_no_keys(self):
        config = saml_config(base_url="http://localhost:8000")
        with override_settings(SAML_CONFIG=config):
            found = check_sp_setup()
        assert ids(found) == [Codes.SP_KEYS_MISSING]
        assert "saml_jit_keys" in found[0].hint

    def test_e018_key_files_that_do_not_exist(self, tmp_path):
        config = saml_config(base_url="http://localhost:8000", keys_dir=tmp_path / "absent")
        with override_settings(SAML_CONFIG=config):
            found = check_sp_setup()
        assert ids(found) == [Codes.SP_KEYS_MISSING]
        assert "sp-signing.key" in found[0].msg and "sp-encryption.crt" in found[0].msg

    def test_keys_from_saml_config_helper_are_silent(self):
        config = saml_config(base_url="http://localhost:8000", key_file=SP_KEY, cert_file=SP_CERT)
        with override_settings(SAML_CONFIG=config):
            assert check_sp_setup() == []

    @pytest.mark.parametrize("samesite", ["None", "none"])
    def test_w011_samesite_none_without_secure(self, samesite):
        with override_settings(SAML_SESSION_COOKIE_SAMESITE=samesite, SESSION_COOKIE_SECURE=False):
            found = check_sp_setup()
        assert ids(found) == [Codes.SAML_COOKIE_SAMESITE_NONE_INSECURE]
        assert found[0].level < ERROR

    def test_w011_djangosaml2_default_is_samesite_none(self):
        with override_settings(SESSION_COOKIE_SECURE=False):
            del django_settings.SAML_SESSION_COOKIE_SAMESITE
            assert ids(check_sp_setup()) == [Codes.SAML_COOKIE_SAMESITE_NONE_INSECURE]

    @pytest.mark.parametrize(("samesite", "secure"), [("None", True), ("Lax", False), ("Strict", False), (None, False)])
    def test_w011_silent(self, samesite, secure):
        with override_settings(SAML_SESSION_COOKIE_SAMESITE=samesite, SESSION_COOKIE_SECURE=secure):
            assert check_sp_setup() == []


# ------------------------------------------------------------ W012: where the error page's "Home" link goes

from saml_jit.checks import check_home_url  # noqa: E402


class TestHomeUrl:
    @pytest.mark.parametrize(
        ("home", "login_redirect"),
        [
            (None, "/"),
            (None, None),
            ("/welcome/", "no-such-name"),  # HOME_URL wins: LOGIN_REDIRECT_URL is not its concern
            ("saml2_metadata", "/"),  # a URL name that reverses
            ("https://intranet.example.org/", "/"),
            ("app.example.org", "/"),  # a dot: resolve_url takes it as a URL, as the page does
        ],
    )
    def test_silent(self, home, login_redirect):
        with override_settings(SAML_JIT={"HOME_URL": home}, LOGIN_REDIRECT_URL=login_redirect):
            assert check_home_url() == []

    def test_w012_home_url_names_no_pattern(self):
        with override_settings(SAML_JIT={"HOME_URL": "no-such-url-name"}):
            found = check_home_url()
        assert ids(found) == [Codes.HOME_URL_UNRESOLVABLE]
        assert found[0].level < ERROR
        assert found[0].msg.startswith("HOME_URL ('no-such-url-name')") and "'/'" in found[0].msg

    def test_w012_falls_back_to_login_redirect_url(self):
        with override_settings(SAML_JIT={}, LOGIN_REDIRECT_URL="dashboard:home"):
            found = check_home_url()
        assert ids(found) == [Codes.HOME_URL_UNRESOLVABLE]
        assert found[0].msg.startswith("LOGIN_REDIRECT_URL ('dashboard:home')")

    def test_registered_with_the_url_checks(self):
        from django.core import checks

        with override_settings(SAML_JIT={"HOME_URL": "no-such-url-name"}):
            found = checks.run_checks(tags=[checks.Tags.urls])
        assert Codes.HOME_URL_UNRESOLVABLE in ids(found)
