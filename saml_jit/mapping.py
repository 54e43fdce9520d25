"""Raw SAML attributes -> a validated, normalised profile.

Pure: plain data in, plain data out, no ORM and no request. Everything here
decides on what the XML actually said (saml_jit reads attribute values from
the parsed assertion, before pysaml2's own stripping), so a value with a
trailing space or an invisible character is refused rather than quietly
normalised into somebody else's account.

Identifiers (the subject, the username, the email) are never altered: a bad
one denies the login. Display fields (names and any other mapped field) are
normalised, and each normalisation is noted on the profile:

* surrounding whitespace is stripped;
* a value longer than the model field is cut to the field's ``max_length``.

Control characters (NUL included) are refused in every field.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import EmailValidator

from .conf import AUTHN_METHODS_ATTRIBUTE, IdPSettings
from .exceptions import Denied
from .saml.authn import shows_mfa
from .saml.data import AssertionData, Authn

NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"

#: Fields the attribute map may never write, whatever it says: privilege and
#: account state come only from explicit configuration.
FORBIDDEN_FIELDS = frozenset(
    {
        "id",
        "pk",
        "password",
        "is_superuser",
        "is_staff",
        "is_active",
        "groups",
        "user_permissions",
        "last_login",
        "date_joined",
    }
)

IDENTIFIER = "identifier"
EMAIL = "email"
DISPLAY = "display"


@dataclass(frozen=True)
class FieldSpec:
    """What mapping needs to know about one user model field."""

    name: str
    max_length: int | None
    kind: str = DISPLAY


@dataclass(frozen=True)
class Profile:
    """A validated profile: what the IdP asserted, safe to write to a model."""

    idp_entity_id: str
    subject: str
    name_id_format: str
    fields: dict[str, str]
    assertion_id: str = ""
    notes: tuple[str, ...] = ()
    event_attributes: dict[str, list[str]] = field(default_factory=dict)
    #: Group values as asserted; empty when the IdP sent none.
    groups: tuple[str, ...] = ()
    #: The IdP said "too many groups to list" (Entra ID overage): the groups
    #: are unknown, which is not the same as none.
    groups_overage: bool = False
    #: How the person signed in at the IdP (the AuthnStatement).
    authn: Authn = field(default_factory=Authn)
    #: Authentication methods the IdP listed (Entra's authnmethodsreferences).
    authn_methods: tuple[str, ...] = ()

    def has_mfa(self, mfa_contexts: Iterable[str]) -> bool:
        """Whether the AuthnContextClassRef or a listed method shows multi-factor authentication."""
        return shows_mfa((self.authn.context_class,), self.authn_methods, mfa_contexts)

    @property
    def authn_record(self) -> dict[str, object]:
        """What the login event records about the authentication (no personal data)."""
        instant = self.authn.instant
        return {
            "context_class": self.authn.context_class[:AUTHN_METHOD_MAX_LENGTH],
            "instant": instant.isoformat() if instant is not None else None,
            "methods": list(self.authn_methods),
        }

    @property
    def email(self) -> str:
        return self.fields.get("email", "")


_email_validator = EmailValidator()


def _has_control(value: str) -> bool:
    if value.isascii():  # the common case, without a loop: ASCII's unprintables are exactly its Cc characters
        return not value.isprintable()
    return any(unicodedata.category(ch) == "Cc" for ch in value)


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt):
# rendered as nothing, so "alice" and "al\u034fice" look the same. Some are
# not format characters (U+034F is Mn, U+3164 is Lo), hence the explicit list.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _is_invisible(ch: str) -> bool:
    if unicodedata.category(ch) in ("Cf", "Zl", "Zp"):
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


def _has_invisible(value: str) -> bool:
    # Invisible characters (zero-width space/joiner, bidi overrides, variation
    # selectors, fillers…) and line or paragraph separators make two
    # identifiers look alike. ASCII holds none of them.
    return not value.isascii() and any(_is_invisible(ch) for ch in value)


def _single(values: tuple[str, ...], label: str) -> str:
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        raise Denied("multiple_values", f"{label} was sent with {len(distinct)} different values.", label)
    return distinct[0]


def check_identifier(value: str, label: str, max_length: int | None) -> str:
    """Validate an identifier; never alter it."""
    if not value:
        raise Denied("missing_attribute", f"{label} is empty.", label)
    if _has_control(value):
        raise Denied("control_characters", f"{label} contains control characters.", label)
    if _has_invisible(value):
        raise Denied("invisible_characters", f"{label} contains invisible Unicode characters.", label)
    if value != value.strip():
        raise Denied("whitespace", f"{label} has leading or trailing whitespace.", label)
    if max_length is not None and len(value) > max_length:
        raise Denied("too_long", f"{label} is longer than {max_length} characters.", label)
    return value


def check_username(value: str, label: str, max_length: int | None) -> str:
    value = check_identifier(value, label, max_length)
    if not value.isascii():
        # Non-ASCII usernames admit confusables ("\u0430lice" with a Cyrillic a).
        raise Denied("non_ascii_username", f"{label} contains non-ASCII characters.", label)
    if not all(ch.isalnum() or ch in "@.+-_" for ch in value):
        raise Denied("invalid_username", f"{label} contains characters not allowed in usernames.", label)
    return value


def check_email(value: str, label: str, max_length: int | None) -> str:
    value = check_identifier(value, label, max_length)
    if not value.isascii():
        # "alice@exampl\u0435.org" (a Cyrillic e) looks like alice@example.org.
        # Internationalised domains arrive ASCII-encoded (xn--…) and pass.
        raise Denied("non_ascii_email", f"{label} contains non-ASCII characters.", label)
    try:
        _email_validator(value)
    except ValidationError:
        raise Denied("invalid_email", f"{label} is not a valid email address.", label) from None
    local, _, domain = value.rpartition("@")
    normalised = f"{local}@{domain.lower()}"
    if max_length is not None and len(normalised) > max_length:
        # Lower-casing can lengthen a string ("İ" becomes two code points).
        raise Denied("too_long", f"{label} is longer than {max_length} characters.", label)
    return normalised


def normalise_display(value: str, label: str, max_length: int | None, notes: list[str]) -> str:
    if _has_control(value):
        raise Denied("control_characters", f"{label} contains control characters.", label)
    stripped = value.strip()
    if stripped != value:
        notes.append(f"{label}: surrounding whitespace removed")
    if max_length is not None and len(stripped) > max_length:
        notes.append(f"{label}: cut to {max_length} characters")
        stripped = stripped[:max_length].rstrip()
    return stripped


def extract_subject(assertion: AssertionData, settings: IdPSettings, max_length: int) -> str:
    """The stable subject: the NameID, or the configured subject attribute."""
    if settings.SUBJECT_ATTRIBUTE:
        name, values = assertion.lookup(settings.SUBJECT_ATTRIBUTE)
        if name is None or not values:
            raise Denied("missing_subject", "The subject attribute is missing.", "subject")
        if assertion.is_duplicated(name):
            raise Denied("duplicate_attribute", "The subject attribute was sent more than once.", "subject")
        return check_identifier(_single(values, "subject"), "subject", max_length)
    if not assertion.name_id:
        raise Denied("missing_subject", "The assertion has no NameID.", "subject")
    if assertion.name_id_format == NAMEID_TRANSIENT:
        raise Denied(
            "transient_name_id",
            "A transient NameID changes on every login and cannot identify an account; "
            "configure a persistent NameID or SUBJECT_ATTRIBUTE.",
            "subject",
        )
    if assertion.name_id_format == NAMEID_EMAIL:
        raise Denied(
            "email_name_id",
            "An emailAddress NameID is not a stable subject (emails change and get reassigned); configure a "
            "persistent NameID, or name the attribute to use in SUBJECT_ATTRIBUTE.",
            "subject",
        )
    return check_identifier(assertion.name_id, "subject", max_length)


def _map_field(spec: FieldSpec, values: tuple[str, ...], notes: list[str]) -> str:
    value = _single(values, spec.name)
    if spec.kind == EMAIL:
        return check_email(value, spec.name, spec.max_length)
    if spec.kind == IDENTIFIER:
        return check_username(value, spec.name, spec.max_length)
    return normalise_display(value, spec.name, spec.max_length, notes)


def map_fields(
    assertion: AssertionData, settings: IdPSettings, specs: Mapping[str, FieldSpec]
) -> tuple[dict[str, str], list[str]]:
    """Mapped, validated user fields and the normalisation notes."""
    values: dict[str, str] = {}
    notes: list[str] = []
    for field_name, names in settings.ATTRIBUTE_MAP.items():
        spec = specs.get(field_name)
        if spec is None or field_name in FORBIDDEN_FIELDS:
            continue
        name, raw = assertion.lookup(names)
        if name is None or not raw:
            continue
        if assertion.is_duplicated(name):
            raise Denied(
                "duplicate_attribute", f"{field_name} was sent in more than one attribute element.", field_name
            )
        values[field_name] = _map_field(spec, raw, notes)
    return values, notes


def extract_groups(assertion: AssertionData, settings: IdPSettings) -> tuple[tuple[str, ...], bool]:
    """Asserted group values (exact, de-duplicated) and the overage flag."""
    overage_name, _ = assertion.lookup(settings.GROUPS_OVERAGE_ATTRIBUTE)
    values: list[str] = []
    for name in settings.GROUPS_ATTRIBUTE:
        key, raw = assertion.lookup([name])
        if key is not None:
            values.extend(raw)
    for value in values:
        if _has_control(value) or _has_invisible(value):
            raise Denied("control_characters", "A group value contains control or invisible characters.", "groups")
    return tuple(dict.fromkeys(value for value in values if value)), overage_name is not None


#: At most this many authentication methods are read, each at most this long.
AUTHN_METHODS_MAX, AUTHN_METHOD_MAX_LENGTH = 16, 255


def authn_methods(assertion: AssertionData) -> tuple[str, ...]:
    """Entra's (and AD FS's) authnmethodsreferences values; odd ones (controls, overlong) are left out."""
    _, values = assertion.lookup([AUTHN_METHODS_ATTRIBUTE])
    kept = (
        value
        for value in values
        if value and len(value) <= AUTHN_METHOD_MAX_LENGTH and not (_has_control(value) or _has_invisible(value))
    )
    return tuple(dict.fromkeys(kept))[:AUTHN_METHODS_MAX]


def event_attributes(assertion: AssertionData, allowed: Iterable[str]) -> dict[str, list[str]]:
    """The allow-listed attributes, for storing on events."""
    kept: dict[str, list[str]] = {}
    for name in allowed:
        key, values = assertion.lookup([name])
        if key is not None:
            kept[name] = list(values)
    return kept


def build_profile(
    assertion: AssertionData,
    settings: IdPSettings,
    specs: Mapping[str, FieldSpec],
    subject_max_length: int,
) -> Profile:
    """Validate ``assertion`` into a :class:`Profile`, or raise :class:`Denied`."""
    subject = extract_subject(assertion, settings, subject_max_length)
    try:
        values, notes = map_fields(assertion, settings, specs)
        for required in settings.REQUIRED_ATTRIBUTES:
            if not values.get(required):
                raise Denied("missing_attribute", f"The required attribute {required} is missing.", required)
        groups, overage = extract_groups(assertion, settings) if settings.manages_groups else ((), False)
    except Denied as denial:
        raise denial.replace(subject=subject) from None
    return Profile(
        idp_entity_id=assertion.idp_entity_id,
        subject=subject,
        name_id_format=assertion.name_id_format,
        fields=values,
        assertion_id=assertion.assertion_id,
        notes=tuple(notes),
        event_attributes=event_attributes(assertion, settings.EVENT_ATTRIBUTES),
        groups=groups,
        groups_overage=overage,
        authn=assertion.authn,
        authn_methods=authn_methods(assertion),
    )


def field_specs(model: Any, field_names: Iterable[str]) -> dict[str, FieldSpec]:
    """Describe the concrete, writable text fields of ``model`` named in ``field_names``."""
    username_field = getattr(model, "USERNAME_FIELD", "username")
    email_field = model.get_email_field_name() if hasattr(model, "get_email_field_name") else "email"
    specs: dict[str, FieldSpec] = {}
    for name in field_names:
        if name in FORBIDDEN_FIELDS:
            continue
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:  # a system check reports it
            continue
        if not getattr(model_field, "concrete", False) or model_field.is_relation:
            continue
        if name == email_field:
            kind = EMAIL
        elif name == username_field:
            kind = IDENTIFIER
        else:
            kind = DISPLAY
        specs[name] = FieldSpec(name=name, max_length=getattr(model_field, "max_length", None), kind=kind)
    return specs
