"""Tests for :mod:`saml_jit.conf`: defaults, per-IdP overrides, lazy reads."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from saml_jit.conf import (
    DEFAULT_ATTRIBUTE_MAP,
    GLOBAL_DEFAULTS,
    KNOWN_KEYS,
    PER_IDP_KEYS,
    SYNC_ALWAYS,
    SYNC_ON_CREATE,
    USERNAME_FROM_EMAIL,
    AppSettings,
    IdPSettings,
    app_settings,
)

IDP = "https://idp.example.org/idp/shibboleth"
OTHER_IDP = "https://login.partner.example/saml"


class TestDefaults:
    @override_settings(SAML_JIT={})
    def test_global_defaults(self):
        assert app_settings.POLICY == "saml_jit.policy.Policy"
        assert app_settings.ERROR_TEMPLATE == "saml_jit/error.html"
        assert app_settings.IDPS == {}
        assert app_settings.MAX_RESPONSE_SIZE == 512 * 1024

    @override_settings(SAML_JIT={})
    def test_per_idp_defaults_are_secure(self):
        idp = app_settings.for_idp(IDP)
        assert idp.entity_id == IDP
        assert idp.CREATE_USERS is True
        assert idp.SUBJECT_ATTRIBUTE == ()
        assert dict(idp.ATTRIBUTE_MAP) == DEFAULT_ATTRIBUTE_MAP
        assert idp.REQUIRED_ATTRIBUTES == ()
        assert dict(idp.SYNC) == {}
        assert idp.ALLOWED_EMAIL_DOMAINS == ()
        assert idp.NEW_USERS_ACTIVE is True
        assert idp.LINK_BY_EMAIL is False
        assert idp.USERNAME_SOURCE == USERNAME_FROM_EMAIL
        assert idp.EVENT_ATTRIBUTES == ()
        assert idp.ALLOW_SUPERUSER is False
        assert idp.CREATE_GROUPS is False
        assert dict(idp.GROUP_MAP) == {}
        assert idp.manages_groups is False
        assert idp.ALLOW_CBC_ENCRYPTION is False  # AES-GCM only: CBC is a decryption oracle's ground

    def test_missing_setting_entirely(self):
        with override_settings():
            del django_settings.SAML_JIT
            assert not hasattr(django_settings, "SAML_JIT")
            assert app_settings.raw == {}
            assert GLOBAL_DEFAULTS["POLICY"] == app_settings.POLICY
            assert app_settings.for_idp(IDP).LINK_BY_EMAIL is False

    @override_settings(SAML_JIT=None)
    def test_none_setting(self):
        assert app_settings.raw == {}
        assert app_settings.for_idp(IDP).CREATE_USERS is True

    def test_default_attribute_map_knows_oid_and_claim_names(self):
        assert DEFAULT_ATTRIBUTE_MAP["email"][0] == "urn:oid:0.9.2342.19200300.100.1.3"
        assert "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress" in DEFAULT_ATTRIBUTE_MAP["email"]
        assert "urn:oid:2.5.4.42" in DEFAULT_ATTRIBUTE_MAP["first_name"]
        assert "urn:oid:2.5.4.4" in DEFAULT_ATTRIBUTE_MAP["last_name"]

    def test_known_keys(self):
        assert "entity_id" not in PER_IDP_KEYS
        assert {"CREATE_USERS", "LINK_BY_EMAIL", "ATTRIBUTE_MAP", "SYNC"} <= PER_IDP_KEYS
        assert {"POLICY", "IDPS", "ERROR_TEMPLATE", "MAX_RESPONSE_SIZE"} <= KNOWN_KEYS
        assert PER_IDP_KEYS <= KNOWN_KEYS


class TestPrecedence:
    @override_settings(
        SAML_JIT={
            "CREATE_USERS": False,
            "LINK_BY_EMAIL": True,
            "IDPS": {IDP: {"CREATE_USERS": True}},
        }
    )
    def test_defaults_then_global_then_idp(self):
        idp = app_settings.for_idp(IDP)
        assert idp.CREATE_USERS is True  # IdP beats global
        assert idp.LINK_BY_EMAIL is True  # global beats default
        assert idp.NEW_USERS_ACTIVE is True  # default
        other = app_settings.for_idp(OTHER_IDP)
        assert (other.CREATE_USERS, other.LINK_BY_EMAIL) == (False, True)

    @override_settings(
        SAML_JIT={
            "ATTRIBUTE_MAP": {"email": ["mail"]},
            "SYNC": {"first_name": "on_create"},
            "IDPS": {IDP: {"ATTRIBUTE_MAP": {"email": ["corpMail"]}, "SYNC": {"last_name": "on_create"}}},
        }
    )
    def test_mappings_replaced_not_merged(self):
        idp = app_settings.for_idp(IDP)
        assert dict(idp.ATTRIBUTE_MAP) == {"email": ("corpMail",)}
        assert dict(idp.SYNC) == {"last_name": "on_create"}
        other = app_settings.for_idp(OTHER_IDP)
        assert dict(other.ATTRIBUTE_MAP) == {"email": ("mail",)}
        assert dict(other.SYNC) == {"first_name": "on_create"}

    @override_settings(SAML_JIT={"IDPS": {IDP: {"POLICY": "x.Y", "entity_id": "spoofed", "NOPE": 1}}})
    def test_only_per_idp_keys_taken_from_idp_block(self):
        idp = app_settings.for_idp(IDP)
        assert idp.entity_id == IDP
        assert app_settings.POLICY == "saml_jit.policy.Policy"

    @override_settings(SAML_JIT={"POLICY": "a.B", "ERROR_TEMPLATE": "x.html", "MAX_RESPONSE_SIZE": "1024"})
    def test_global_only_keys(self):
        assert app_settings.POLICY == "a.B"
        assert app_settings.ERROR_TEMPLATE == "x.html"
        assert app_settings.MAX_RESPONSE_SIZE == 1024

    @override_settings(SAML_JIT={"IDPS": {IDP: {"ALLOW_CBC_ENCRYPTION": True}}})
    def test_cbc_encryption_opt_in_is_per_idp(self):
        assert "ALLOW_CBC_ENCRYPTION" in PER_IDP_KEYS
        assert app_settings.for_idp(IDP).ALLOW_CBC_ENCRYPTION is True
        assert app_settings.for_idp(OTHER_IDP).ALLOW_CBC_ENCRYPTION is False

    @override_settings(SAML_JIT={"IDPS": {IDP: None}})
    def test_empty_idp_block(self):
        assert app_settings.for_idp(IDP).CREATE_USERS is True

    @override_settings(SAML_JIT={"IDPS": {IDP: {"LINK_BY_EMAIL": True}}})
    def test_idps_property_is_a_copy(self):
        app_settings.IDPS[OTHER_IDP] = {}
        assert set(app_settings.IDPS) == {IDP}


class TestCoercion:
    @override_settings(
        SAML_JIT={
            "SUBJECT_ATTRIBUTE": "urn:oasis:names:tc:SAML:attribute:subject-id",
            "REQUIRED_ATTRIBUTES": "email",
            "ALLOWED_EMAIL_DOMAINS": "example.org",
            "EVENT_ATTRIBUTES": "eduPersonAffiliation",
            "ATTRIBUTE_MAP": {"email": "mail", "first_name": ["givenName", "firstName"]},
        }
    )
    def test_strings_become_one_tuples(self):
        idp = app_settings.for_idp(IDP)
        assert idp.SUBJECT_ATTRIBUTE == ("urn:oasis:names:tc:SAML:attribute:subject-id",)
        assert idp.REQUIRED_ATTRIBUTES == ("email",)
        assert idp.ALLOWED_EMAIL_DOMAINS == ("example.org",)
        assert idp.EVENT_ATTRIBUTES == ("eduPersonAffiliation",)
        assert dict(idp.ATTRIBUTE_MAP) == {"email": ("mail",), "first_name": ("givenName", "firstName")}

    @override_settings(SAML_JIT={"REQUIRED_ATTRIBUTES": ["email", "last_name"], "ALLOWED_EMAIL_DOMAINS": None})
    def test_lists_and_none(self):
        idp = app_settings.for_idp(IDP)
        assert idp.REQUIRED_ATTRIBUTES == ("email", "last_name")
        assert idp.ALLOWED_EMAIL_DOMAINS == ()

    @override_settings(
        SAML_JIT={"GROUP_MAP": {"cn=staff": "Staff", "cn=lib": ["Library", "Staff"]}, "STAFF_GROUPS": "cn=staff"}
    )
    def test_group_settings(self):
        idp = app_settings.for_idp(IDP)
        assert dict(idp.GROUP_MAP) == {"cn=staff": ("Staff",), "cn=lib": ("Library", "Staff")}
        assert idp.STAFF_GROUPS == ("cn=staff",)
        assert idp.manages_groups is True

    @override_settings(SAML_JIT={"PRIVILEGE_TTL": timedelta(hours=1)})
    def test_privilege_ttl_timedelta_becomes_seconds(self):
        assert app_settings.for_idp(IDP).PRIVILEGE_TTL == 3600

    def test_user_settings_not_mutated(self):
        raw = {"SYNC": {"email": "on_create"}, "ATTRIBUTE_MAP": {"email": "mail"}, "REQUIRED_ATTRIBUTES": "email"}
        with override_settings(SAML_JIT=raw):
            app_settings.for_idp(IDP)
        assert raw == {
            "SYNC": {"email": "on_create"},
            "ATTRIBUTE_MAP": {"email": "mail"},
            "REQUIRED_ATTRIBUTES": "email",
        }

    def test_default_attribute_map_not_shared_for_mutation(self):
        with override_settings(SAML_JIT={}):
            idp = app_settings.for_idp(IDP)
        idp.ATTRIBUTE_MAP["email"] = ("evil",)  # type: ignore[index]
        assert DEFAULT_ATTRIBUTE_MAP["email"][0] == "urn:oid:0.9.2342.19200300.100.1.3"


class TestLaziness:
    def test_reads_current_settings_each_time(self):
        with override_settings(SAML_JIT={"CREATE_USERS": False}):
            assert app_settings.for_idp(IDP).CREATE_USERS is False
            with override_settings(SAML_JIT={"CREATE_USERS": True}):
                assert app_settings.for_idp(IDP).CREATE_USERS is True
            assert app_settings.for_idp(IDP).CREATE_USERS is False

    def test_new_instance_and_module_instance_agree(self):
        with override_settings(SAML_JIT={"POLICY": "my.Policy"}):
            assert AppSettings().POLICY == app_settings.POLICY == "my.Policy"

    def test_nothing_written_onto_django_settings(self):
        with override_settings(SAML_JIT={}):
            app_settings.for_idp(IDP)
            assert not hasattr(django_settings, "SAML_JIT_POLICY")
            assert django_settings.SAML_JIT == {}

    def test_idp_settings_frozen(self):
        with override_settings(SAML_JIT={}):
            idp = app_settings.for_idp(IDP)
        with pytest.raises(FrozenInstanceError):
            idp.CREATE_USERS = False  # type: ignore[misc]


class TestSyncMode:
    def _idp(self, sync=None) -> IdPSettings:
        with override_settings(SAML_JIT={"SYNC": sync or {}}):
            return app_settings.for_idp(IDP)

    def test_defaults(self):
        idp = self._idp()
        assert idp.sync_mode("first_name", "username") == SYNC_ALWAYS
        assert idp.sync_mode("username", "username") == SYNC_ON_CREATE

    def test_username_field_follows_the_model(self):
        # With an email-keyed user model the email is the username field.
        idp = self._idp()
        assert idp.sync_mode("email", "email") == SYNC_ON_CREATE
        assert idp.sync_mode("username", "email") == SYNC_ALWAYS

    def test_explicit(self):
        idp = self._idp({"first_name": "on_create", "username": "always"})
        assert idp.sync_mode("first_name", "username") == SYNC_ON_CREATE
        assert idp.sync_mode("username", "username") == SYNC_ALWAYS
        assert idp.sync_mode("last_name", "username") == SYNC_ALWAYS
