"""Tests for :mod:`saml_jit.mapping`: raw attributes -> validated profile.

Pure logic: no database, no request. ``field_specs`` only introspects the
user model's ``_meta``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.db import models
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from saml_jit import mapping
from saml_jit.conf import DEFAULT_ATTRIBUTE_MAP, IdPSettings, app_settings
from saml_jit.mapping import (
    DISPLAY,
    EMAIL,
    FORBIDDEN_FIELDS,
    IDENTIFIER,
    NAMEID_TRANSIENT,
    AssertionData,
    Denied,
    FieldSpec,
    Profile,
    build_profile,
    check_email,
    check_identifier,
    check_username,
    event_attributes,
    field_specs,
)

IDP = "https://idp.example.org/idp/shibboleth"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAME_ID = "AAdzZWNyZXQxVbq5Xo8fTn2sN3Hc"
SUBJECT_MAX = 255

MAIL_OID = "urn:oid:0.9.2342.19200300.100.1.3"
GIVEN_OID = "urn:oid:2.5.4.42"
SN_OID = "urn:oid:2.5.4.4"
UID_OID = "urn:oid:0.9.2342.19200300.100.1.1"
SUBJECT_ID = "urn:oasis:names:tc:SAML:attribute:subject-id"
ENTRA_MAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
ENTRA_GIVEN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
ENTRA_SURNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
GROUPS_OID = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"

# What field_specs(User, ...) says about django.contrib.auth's User (asserted
# in test_field_specs_for_auth_user), written out so mapping tests do not
# depend on field_specs.
SPECS = {
    "username": FieldSpec("username", 150, IDENTIFIER),
    "email": FieldSpec("email", 254, EMAIL),
    "first_name": FieldSpec("first_name", 150, DISPLAY),
    "last_name": FieldSpec("last_name", 150, DISPLAY),
}

ATTRIBUTE_MAP = {**DEFAULT_ATTRIBUTE_MAP, "username": (UID_OID, "uid")}


def make_settings(**overrides) -> IdPSettings:
    """Effective settings for IDP, built the way the app builds them."""
    with override_settings(SAML_JIT={"ATTRIBUTE_MAP": ATTRIBUTE_MAP, "IDPS": {IDP: overrides}}):
        return app_settings.for_idp(IDP)


def make_assertion(
    attributes: dict | None = None,
    *,
    name_id: str | None = NAME_ID,
    name_id_format: str = PERSISTENT,
    duplicates=(),
) -> AssertionData:
    attrs = {name: (value,) if isinstance(value, str) else tuple(value) for name, value in (attributes or {}).items()}
    return AssertionData(
        idp_entity_id=IDP,
        name_id=name_id,
        name_id_format=name_id_format,
        assertion_id="_3f2a9c",
        attributes=attrs,
        duplicate_names=frozenset(duplicates),
    )


def build(attributes=None, settings: IdPSettings | None = None, specs=SPECS, **kwargs) -> Profile:
    return build_profile(make_assertion(attributes, **kwargs), settings or make_settings(), specs, SUBJECT_MAX)


def denied(attributes=None, settings: IdPSettings | None = None, specs=SPECS, **kwargs) -> Denied:
    with pytest.raises(Denied) as info:
        build(attributes, settings, specs, **kwargs)
    return info.value


# ---------------------------------------------------------------- lookup


class TestLookup:
    def test_first_present_name_wins_in_the_order_given(self):
        data = make_assertion({"mail": "b@example.org", MAIL_OID: "a@example.org"})
        assert data.lookup([MAIL_OID, "mail"]) == (MAIL_OID, ("a@example.org",))
        assert data.lookup(["mail", MAIL_OID]) == ("mail", ("b@example.org",))

    def test_friendly_name(self):
        data = make_assertion({"givenName": "Alice"})
        assert data.lookup(DEFAULT_ATTRIBUTE_MAP["first_name"]) == ("givenName", ("Alice",))

    def test_uri_name(self):
        data = make_assertion({ENTRA_GIVEN: "Alice"})
        assert data.lookup(DEFAULT_ATTRIBUTE_MAP["first_name"]) == (ENTRA_GIVEN, ("Alice",))

    def test_case_insensitive_returns_the_key_as_sent(self):
        data = make_assertion({"GivenName": "Alice", "URN:OID:0.9.2342.19200300.100.1.3": "a@example.org"})
        assert data.lookup(["givenname"]) == ("GivenName", ("Alice",))
        assert data.lookup([MAIL_OID]) == ("URN:OID:0.9.2342.19200300.100.1.3", ("a@example.org",))

    def test_absent(self):
        assert make_assertion({"sn": "Liddell"}).lookup(["givenName", GIVEN_OID]) == (None, ())
        assert make_assertion().lookup([]) == (None, ())

    def test_all_values_returned(self):
        data = make_assertion({GROUPS_OID: ("staff", "library")})
        assert data.lookup([GROUPS_OID]) == (GROUPS_OID, ("staff", "library"))


# ---------------------------------------------------------- happy paths


class TestBuildProfile:
    def test_oid_names(self):
        profile = build({MAIL_OID: "alice@example.org", GIVEN_OID: "Alice", SN_OID: "Liddell", UID_OID: "alice"})
        assert profile == Profile(
            idp_entity_id=IDP,
            subject=NAME_ID,
            name_id_format=PERSISTENT,
            fields={"email": "alice@example.org", "first_name": "Alice", "last_name": "Liddell", "username": "alice"},
            assertion_id="_3f2a9c",
            notes=(),
            event_attributes={},
        )
        assert profile.email == "alice@example.org"

    def test_friendly_names(self):
        profile = build({"mail": "bob@example.org", "givenName": "Bob", "sn": "Builder", "uid": "bob"})
        assert profile.fields == {
            "email": "bob@example.org",
            "first_name": "Bob",
            "last_name": "Builder",
            "username": "bob",
        }

    def test_claim_uris(self):
        profile = build({ENTRA_MAIL: "carol@contoso.com", ENTRA_GIVEN: "Carol", ENTRA_SURNAME: "Danvers"})
        assert profile.fields == {"email": "carol@contoso.com", "first_name": "Carol", "last_name": "Danvers"}

    def test_onelogin_names(self):
        profile = build({"User.email": "dan@example.org", "User.FirstName": "Dan"})
        assert profile.fields == {"email": "dan@example.org", "first_name": "Dan"}

    def test_attribute_with_name_and_friendly_name_keys(self):
        # assertions.py keys one <Attribute> by both its Name and FriendlyName.
        profile = build({MAIL_OID: "alice@example.org", "mail": "alice@example.org"})
        assert profile.fields == {"email": "alice@example.org"}

    def test_unmapped_and_absent_attributes_are_ignored(self):
        profile = build({"eduPersonAffiliation": "member", "sn": ()})
        assert profile.fields == {}
        assert profile.email == ""

    def test_field_without_spec_is_not_mapped(self):
        settings = make_settings(ATTRIBUTE_MAP={**ATTRIBUTE_MAP, "nickname": ("nick",)})
        assert build({"nick": "al", "mail": "a@example.org"}, settings).fields == {"email": "a@example.org"}

    def test_identical_duplicate_values_are_fine(self):
        profile = build({"mail": ("alice@example.org", "alice@example.org"), "givenName": ("Al", "Al")})
        assert profile.fields == {"email": "alice@example.org", "first_name": "Al"}

    def test_custom_attribute_map_replaces_names(self):
        settings = make_settings(ATTRIBUTE_MAP={"email": ("corpMail",)})
        assert build({"corpMail": "a@example.org", "mail": "other@example.org"}, settings).fields == {
            "email": "a@example.org"
        }


# --------------------------------------------------------------- subject


class TestSubject:
    def test_persistent_name_id(self):
        assert build(name_id="opaque-1234").subject == "opaque-1234"

    def test_unspecified_name_id(self):
        profile = build(name_id="jdoe", name_id_format=UNSPECIFIED)
        assert (profile.subject, profile.name_id_format) == ("jdoe", UNSPECIFIED)

    def test_name_id_case_is_kept(self):
        # Opaque IDs are compared exactly, never folded.
        assert build(name_id="AbC=").subject == "AbC="

    def test_transient_name_id_is_denied(self):
        error = denied(name_id="_ae0216740b5baa4b13c79ffdb2baa82572788fd9a3", name_id_format=NAMEID_TRANSIENT)
        assert (error.code, error.field) == ("transient_name_id", "subject")

    @pytest.mark.parametrize("name_id", [None, ""])
    def test_missing_name_id(self, name_id):
        error = denied({"mail": "a@example.org"}, name_id=name_id)
        assert (error.code, error.field) == ("missing_subject", "subject")

    def test_subject_attribute_wins_over_name_id(self):
        settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,))
        profile = build({SUBJECT_ID: "1234@example.org"}, settings, name_id="ignored")
        assert profile.subject == "1234@example.org"

    def test_subject_attribute_first_configured_name_present(self):
        settings = make_settings(SUBJECT_ATTRIBUTE=("objectidentifier", SUBJECT_ID))
        assert build({SUBJECT_ID: "s-1", "ObjectIdentifier": "o-1"}, settings).subject == "o-1"

    def test_subject_attribute_allows_transient_name_id(self):
        # The NameID is not used at all when a subject attribute is configured.
        settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,))
        assert build({SUBJECT_ID: "s-1"}, settings, name_id_format=NAMEID_TRANSIENT).subject == "s-1"

    @pytest.mark.parametrize("attributes", [{}, {SUBJECT_ID: ()}])
    def test_subject_attribute_missing(self, attributes):
        settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,))
        error = denied(attributes, settings, name_id="present-but-not-used")
        assert error.code == "missing_subject"

    def test_subject_attribute_multiple_values(self):
        settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,))
        assert denied({SUBJECT_ID: ("s-1", "s-2")}, settings).code == "multiple_values"
        assert build({SUBJECT_ID: ("s-1", "s-1")}, settings).subject == "s-1"

    def test_subject_attribute_sent_twice(self):
        settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,))
        error = denied({SUBJECT_ID: ("s-1",)}, settings, duplicates=[SUBJECT_ID])
        assert (error.code, error.field) == ("duplicate_attribute", "subject")

    @pytest.mark.parametrize(
        ("name_id", "code"),
        [
            (" abc", "whitespace"),
            ("abc\t", "control_characters"),
            ("abc\n", "control_characters"),
            ("abc\x00", "control_characters"),
            ("ab\u200bc", "invisible_characters"),
            ("abc\u202e", "invisible_characters"),
            ("abc\u00a0", "whitespace"),
            ("x" * (SUBJECT_MAX + 1), "too_long"),
        ],
    )
    def test_bad_name_id(self, name_id, code):
        error = denied(name_id=name_id)
        assert (error.code, error.field) == (code, "subject")

    def test_subject_at_max_length_is_kept_whole(self):
        assert build(name_id="x" * SUBJECT_MAX).subject == "x" * SUBJECT_MAX

    @pytest.mark.parametrize(("value", "code"), [("s-1 ", "whitespace"), ("s\x00-1", "control_characters")])
    def test_bad_subject_attribute(self, value, code):
        settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,))
        assert denied({SUBJECT_ID: value}, settings).code == code

    def test_email_address_name_id_is_not_a_subject(self):
        denied(name_id="alice@example.org", name_id_format=EMAIL_FORMAT)


# -------------------------------------------------------- denial codes


class TestDenials:
    def test_multiple_distinct_values(self):
        error = denied({"mail": ("alice@example.org", "mallory@example.org")})
        assert (error.code, error.field) == ("multiple_values", "email")
        assert "mallory" not in error.message  # never attribute values in messages

    def test_multiple_values_differing_only_in_whitespace(self):
        error = denied({"givenName": ("Alice", "Alice ")})
        assert (error.code, error.field) == ("multiple_values", "first_name")

    def test_duplicate_attribute_element(self):
        error = denied({"mail": ("alice@example.org",)}, duplicates=["mail"])
        assert (error.code, error.field) == ("duplicate_attribute", "email")

    def test_duplicate_attribute_not_used_by_the_map_is_ignored(self):
        profile = build(
            {"mail": "a@example.org", "eduPersonAffiliation": ("a", "b")}, duplicates=["eduPersonAffiliation"]
        )
        assert profile.fields == {"email": "a@example.org"}

    def test_case_variant_attribute_names_are_ambiguous(self):
        denied({"mail": "alice@example.org", "MAIL": "mallory@example.org"})

    @pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\r"])
    @pytest.mark.parametrize(
        ("attribute", "value", "field"),
        [
            ("mail", "alice{}@example.org", "email"),
            ("uid", "al{}ice", "username"),
            ("givenName", "Al{}ice", "first_name"),
            ("sn", "Lid{}dell", "last_name"),
        ],
    )
    def test_control_characters_in_every_field(self, char, attribute, value, field):
        error = denied({attribute: value.format(char)})
        assert (error.code, error.field) == ("control_characters", field)

    def test_control_character_at_the_edge_of_a_display_field_is_not_stripped_away(self):
        # str.strip() would remove "\n" and "\x1f"; they must deny, not be normalised.
        assert denied({"givenName": "Alice\n"}).code == "control_characters"
        assert denied({"sn": "\x1fLiddell"}).code == "control_characters"

    @pytest.mark.parametrize("char", ["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u00ad", "\u2028", "\u2029"])
    @pytest.mark.parametrize(
        ("attribute", "value", "field"),
        [("mail", "alice@exa{}mple.org", "email"), ("uid", "ali{}ce", "username")],
    )
    def test_invisible_characters_in_identifiers(self, char, attribute, value, field):
        error = denied({attribute: value.format(char)})
        assert (error.code, error.field) == ("invisible_characters", field)

    # Default-ignorable characters outside Cf (U+034F is Mn, U+3164 is Lo):
    # IDNA maps them away, so EmailValidator alone would accept the address.
    @pytest.mark.parametrize("char", ["\u034f", "\ufe0f", "\u3164", "\u115f", "\U000e0041"])
    @pytest.mark.parametrize(
        ("attribute", "value", "field"),
        [("mail", "alice@exa{}mple.org", "email"), ("uid", "ali{}ce", "username")],
    )
    def test_default_ignorable_characters_in_identifiers(self, char, attribute, value, field):
        error = denied({attribute: value.format(char)})
        assert (error.code, error.field) == ("invisible_characters", field)

    @pytest.mark.parametrize("char", ["\u034f", "\ufe0f", "\u3164"])
    def test_default_ignorable_characters_in_subject(self, char):
        assert denied(name_id=f"abc{char}").code == "invisible_characters"

    @pytest.mark.parametrize(
        ("attributes", "field"),
        [
            ({"mail": " alice@example.org"}, "email"),
            ({"mail": "alice@example.org "}, "email"),
            ({"mail": "alice@example.org\u3000"}, "email"),
            ({"uid": "alice "}, "username"),
            ({"uid": " alice"}, "username"),
        ],
    )
    def test_whitespace_around_identifiers(self, attributes, field):
        error = denied(attributes)
        assert (error.code, error.field) == ("whitespace", field)

    def test_too_long_email_is_denied_not_truncated(self):
        specs = {**SPECS, "email": FieldSpec("email", 20, EMAIL)}
        assert build({"mail": "a" * 8 + "@example.org"}, specs=specs).email == "aaaaaaaa@example.org"
        error = denied({"mail": "a" * 9 + "@example.org"}, specs=specs)
        assert (error.code, error.field) == ("too_long", "email")

    def test_too_long_username_is_denied_not_truncated(self):
        assert build({"uid": "a" * 150}).fields["username"] == "a" * 150
        error = denied({"uid": "a" * 151})
        assert (error.code, error.field) == ("too_long", "username")

    def test_non_ascii_email_denied(self):
        # Non-ASCII addresses are refused outright: "exampl\u0435.org" (a Cyrillic e)
        # looks like example.org, and "İ".lower() would even change the length.
        for email in ("a@x\u0130.example.org", "alice@exampl\u0435.org", "j\u00f6rg@example.org"):
            error = denied({"mail": email})
            assert (error.code, error.field) == ("non_ascii_email", "email")
        # Internationalised domains arrive ASCII-encoded and pass.
        assert build({"mail": "a@xn--bcher-kva.example"}).email == "a@xn--bcher-kva.example"

    @pytest.mark.parametrize("username", ["\u0430lice", "alic\u0435", "j\u00f6rg", "\u00e9mile", "\uff41lice"])
    def test_non_ascii_username(self, username):
        error = denied({"uid": username})
        assert (error.code, error.field) == ("non_ascii_username", "username")

    @pytest.mark.parametrize("username", ["al ice", "alice!", "al/ice", "al:ice", "al'ice", "a,b", "a=b"])
    def test_invalid_username(self, username):
        error = denied({"uid": username})
        assert (error.code, error.field) == ("invalid_username", "username")

    @pytest.mark.parametrize("username", ["alice", "Alice.Liddell", "a+b", "a-b_c", "alice@example.org", "42"])
    def test_valid_usernames_kept_exactly(self, username):
        assert build({"uid": username}).fields["username"] == username

    @pytest.mark.parametrize(
        "email", ["alice", "alice@", "@example.org", "alice@@example.org", "alice@example", "al ice@example.org"]
    )
    def test_invalid_email(self, email):
        error = denied({"mail": email})
        assert (error.code, error.field) == ("invalid_email", "email")

    def test_email_domain_lowercased_local_part_kept(self):
        assert build({"mail": "Alice.Liddell@Example.ORG"}).email == "Alice.Liddell@example.org"

    def test_required_attribute_missing(self):
        settings = make_settings(REQUIRED_ATTRIBUTES=("email", "last_name"))
        error = denied({"mail": "a@example.org"}, settings)
        assert (error.code, error.field) == ("missing_attribute", "last_name")

    def test_required_attribute_blank_after_stripping(self):
        settings = make_settings(REQUIRED_ATTRIBUTES=("first_name",))
        error = denied({"givenName": "   "}, settings)
        assert (error.code, error.field) == ("missing_attribute", "first_name")

    def test_required_attributes_present(self):
        settings = make_settings(REQUIRED_ATTRIBUTES=("email", "last_name"))
        assert build({"mail": "a@example.org", "sn": "L"}, settings).fields == {
            "email": "a@example.org",
            "last_name": "L",
        }

    def test_empty_identifier_value(self):
        error = denied({"mail": ""})
        assert (error.code, error.field) == ("missing_attribute", "email")

    def test_attribute_denial_names_the_validated_subject(self):
        # The event for a refused login still says who was refused.
        assert denied({"mail": "not-an-email"}).subject == NAME_ID
        assert denied(name_id=" padded").subject == ""

    def test_subject_checked_before_attributes(self):
        # A login with no usable subject is refused whatever else it carries.
        assert denied({"mail": "bad"}, name_id=None).code == "missing_subject"


# ------------------------------------------------------ display fields


class TestDisplayFields:
    def test_surrounding_whitespace_stripped_with_note(self):
        profile = build({"givenName": "  Alice ", "sn": "Liddell"})
        assert profile.fields == {"first_name": "Alice", "last_name": "Liddell"}
        assert profile.notes == ("first_name: surrounding whitespace removed",)

    def test_inner_whitespace_kept(self):
        assert build({"givenName": "Mary  Ann"}).fields["first_name"] == "Mary  Ann"

    def test_over_max_length_cut_with_note(self):
        profile = build({"sn": "L" * 200})
        assert profile.fields["last_name"] == "L" * 150
        assert profile.notes == ("last_name: cut to 150 characters",)

    def test_exactly_max_length_not_cut(self):
        profile = build({"sn": "L" * 150})
        assert profile.fields["last_name"] == "L" * 150
        assert profile.notes == ()

    def test_both_notes_in_order(self):
        profile = build({"givenName": " " + "A" * 151 + " "})
        assert profile.fields["first_name"] == "A" * 150
        assert profile.notes == ("first_name: surrounding whitespace removed", "first_name: cut to 150 characters")

    def test_no_max_length(self):
        specs = {"first_name": FieldSpec("first_name", None, DISPLAY)}
        assert build({"givenName": "A" * 5000}, specs=specs).fields["first_name"] == "A" * 5000

    def test_non_ascii_display_name_kept(self):
        assert build({"givenName": "Zoë", "sn": "Ñandú 李"}).fields == {"first_name": "Zoë", "last_name": "Ñandú 李"}

    def test_cut_value_has_no_trailing_whitespace(self):
        profile = build({"sn": "A" * 149 + " B"})
        assert profile.fields["last_name"] == "A" * 149
        assert profile.notes == ("last_name: cut to 150 characters",)


# ---------------------------------------------------- forbidden fields


class TestForbiddenFields:
    @pytest.mark.parametrize(
        "field",
        [
            "is_superuser",
            "is_staff",
            "is_active",
            "password",
            "groups",
            "user_permissions",
            "last_login",
            "id",
            "pk",
            "date_joined",
        ],
    )
    def test_never_mapped_even_if_named_in_map_and_specs(self, field):
        settings = make_settings(ATTRIBUTE_MAP={**ATTRIBUTE_MAP, field: ("role",)})
        specs = {**SPECS, field: FieldSpec(field, 150, DISPLAY)}
        profile = build({"role": "true", "mail": "a@example.org"}, settings, specs=specs)
        assert profile.fields == {"email": "a@example.org"}

    def test_forbidden_set_covers_privilege_and_state(self):
        assert {"is_superuser", "is_staff", "is_active", "password", "groups", "user_permissions"} <= FORBIDDEN_FIELDS


# ---------------------------------------------------- event attributes


class TestEventAttributes:
    def test_only_allow_listed(self):
        settings = make_settings(EVENT_ATTRIBUTES=("eduPersonAffiliation", "missing"))
        profile = build({"mail": "a@example.org", "eduPersonAffiliation": ("member", "staff")}, settings)
        assert profile.event_attributes == {"eduPersonAffiliation": ["member", "staff"]}

    def test_empty_allow_list_stores_nothing(self):
        assert build({"mail": "a@example.org", "givenName": "A"}).event_attributes == {}

    def test_case_insensitive_keyed_by_configured_name(self):
        data = make_assertion({"MAIL": ("a@example.org",), "sn": "L"})
        assert event_attributes(data, ["mail"]) == {"mail": ["a@example.org"]}


# --------------------------------------------------------- field_specs


class EmailKeyedUser(AbstractBaseUser):
    email = models.EmailField(max_length=200)
    display_name = models.CharField(max_length=80)
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    class Meta:
        abstract = True
        app_label = "tests"


class TestFieldSpecs:
    def test_auth_user(self):
        specs = field_specs(User, ["username", "email", "first_name", "last_name"])
        assert specs == SPECS

    def test_skips_forbidden_unknown_and_relations(self):
        names = ["email", "is_staff", "is_superuser", "password", "groups", "user_permissions", "nope", "logentry"]
        assert field_specs(User, names) == {"email": SPECS["email"]}

    def test_email_keyed_model(self):
        specs = field_specs(EmailKeyedUser, ["email", "display_name", "is_staff"])
        assert specs == {
            "email": FieldSpec("email", 200, EMAIL),
            "display_name": FieldSpec("display_name", 80, DISPLAY),
        }

    def test_specs_drive_mapping_for_auth_user(self):
        specs = field_specs(User, ATTRIBUTE_MAP)
        profile = build_profile(
            make_assertion({MAIL_OID: "a@Example.org", UID_OID: "al", GIVEN_OID: " A"}),
            make_settings(),
            specs,
            SUBJECT_MAX,
        )
        assert profile.fields == {"email": "a@example.org", "username": "al", "first_name": "A"}


# ------------------------------------------------------------ property

KNOWN_NAMES = sorted({name for names in ATTRIBUTE_MAP.values() for name in names} | {SUBJECT_ID})
_names = st.one_of(st.sampled_from(KNOWN_NAMES), st.text(max_size=20))
_values = st.one_of(
    st.text(max_size=40),
    st.emails(),
    st.from_regex(r"[A-Za-z0-9._+@-]{1,20}", fullmatch=True),
    st.sampled_from(["alice", "Alice@Example.ORG", " alice", "al\u200bice", "\u0430lice", "x\x00"]),
)


@hsettings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attributes=st.dictionaries(_names, st.lists(_values, max_size=3).map(tuple), max_size=6),
    name_id=st.one_of(st.none(), st.text(max_size=40)),
    name_id_format=st.sampled_from([PERSISTENT, UNSPECIFIED, NAMEID_TRANSIENT, ""]),
    subject_attribute=st.booleans(),
    data=st.data(),
)
def test_build_profile_returns_valid_profile_or_denies(attributes, name_id, name_id_format, subject_attribute, data):
    duplicates = data.draw(st.sets(st.sampled_from(sorted(attributes))) if attributes else st.just(set()))
    assertion = AssertionData(
        idp_entity_id=IDP,
        name_id=name_id,
        name_id_format=name_id_format,
        attributes=attributes,
        duplicate_names=frozenset(duplicates),
    )
    settings = make_settings(SUBJECT_ATTRIBUTE=(SUBJECT_ID,) if subject_attribute else ())
    try:
        profile = build_profile(assertion, settings, SPECS, SUBJECT_MAX)
    except Denied as error:
        assert error.code
        return
    assert check_identifier(profile.subject, "subject", SUBJECT_MAX) == profile.subject
    if "email" in profile.fields:
        assert check_email(profile.email, "email", 254) == profile.email
    if "username" in profile.fields:
        assert check_username(profile.fields["username"], "username", 150) == profile.fields["username"]
    assert set(profile.fields) <= set(SPECS)
    for name in ("first_name", "last_name"):
        if name in profile.fields:
            assert len(profile.fields[name]) <= 150
            assert profile.fields[name] == profile.fields[name].strip()
            assert not any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in profile.fields[name])


def test_profile_is_frozen():
    profile = build({"mail": "a@example.org"})
    with pytest.raises(AttributeError):
        profile.subject = "other"  # type: ignore[misc]
    assert replace(profile, subject="other").subject == "other"


# -- the ASCII fast path of the identifier checks -----------------------------------


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_the_ascii_fast_path_agrees_with_the_character_by_character_checks(value):
    assert mapping._has_control(value) == any(unicodedata.category(ch) == "Cc" for ch in value)
    assert mapping._has_invisible(value) == any(mapping._is_invisible(ch) for ch in value)
