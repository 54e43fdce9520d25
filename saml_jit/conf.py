"""The settings object.

Everything saml_jit reads from ``settings.SAML_JIT`` goes through here. Values
are read lazily on every access, so ``override_settings`` works in tests and
nothing is written back onto ``django.conf.settings``.

Most settings can be overridden per identity provider under ``IDPS``, keyed by
the IdP's entity ID::

    SAML_JIT = {
        "CREATE_USERS": False,
        "IDPS": {
            "https://login.example.org/idp": {"CREATE_USERS": True},
        },
    }
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, Generic, TypeVar

from django.conf import settings

# Attribute names real IdPs send for the usual profile fields: friendly names,
# URI/OID names and claim URIs (docs/idps/README.md lists them by form and by IdP).
# Keys are user model fields; the first name present in an assertion wins.
DEFAULT_ATTRIBUTE_MAP: dict[str, tuple[str, ...]] = {
    "email": (
        "urn:oid:0.9.2342.19200300.100.1.3",
        "mail",
        "email",
        "emailAddress",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:1.2.840.113549.1.9.1",
        "User.email",
    ),
    "first_name": (
        "urn:oid:2.5.4.42",
        "givenName",
        "firstName",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "User.FirstName",
    ),
    "last_name": (
        "urn:oid:2.5.4.4",
        "sn",
        "surname",
        "lastName",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        "User.LastName",
    ),
}

#: Attributes that carry group memberships, in the forms real IdPs use.
DEFAULT_GROUPS_ATTRIBUTE: tuple[str, ...] = (
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
    "isMemberOf",
    "groups",
    "memberOf",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    "http://schemas.xmlsoap.org/claims/Group",
)

#: Entra ID sends this instead of the groups claim for people in more than
#: 150 groups. Its presence means "groups unknown", never "no groups".
DEFAULT_GROUPS_OVERAGE_ATTRIBUTE: tuple[str, ...] = ("http://schemas.microsoft.com/claims/groups.link",)

SYNC_ALWAYS = "always"
SYNC_ON_CREATE = "on_create"
SYNC_MODES = (SYNC_ALWAYS, SYNC_ON_CREATE)

USERNAME_FROM_EMAIL = "email_localpart"
USERNAME_FROM_ATTRIBUTE = "attribute"
USERNAME_FROM_SUBJECT = "subject"
USERNAME_SOURCES = (USERNAME_FROM_EMAIL, USERNAME_FROM_ATTRIBUTE, USERNAME_FROM_SUBJECT)

#: REFEDS MFA profile (https://refeds.org/profile/mfa): the AuthnContextClassRef of an MFA sign-in.
REFEDS_MFA = "https://refeds.org/profile/mfa"
#: Microsoft's "multiple authentication" claim: AD FS's AuthnContextClassRef for MFA, and the value
#: Entra ID puts in the authnmethodsreferences attribute after an MFA sign-in.
MICROSOFT_MFA = "http://schemas.microsoft.com/claims/multipleauthn"
#: The attribute in which Entra ID (and AD FS) list the methods the person signed in with.
AUTHN_METHODS_ATTRIBUTE = "http://schemas.microsoft.com/claims/authnmethodsreferences"
#: Authentication contexts and methods that show multi-factor authentication, by default.
DEFAULT_MFA_AUTHN_CONTEXTS: tuple[str, ...] = (REFEDS_MFA, MICROSOFT_MFA, "mfa")

COMPARISONS = ("exact", "minimum", "better", "maximum")


@dataclass(frozen=True)
class RequiredAuthnContext:
    """``REQUIRED_AUTHN_CONTEXT`` as typed data: the classes, and how a response is held to them.

    saml_jit cannot rank authentication contexts it does not know, so the
    classes are read weakest first and a response is accepted only with one of
    them (fail closed): ``exact``, ``minimum`` and ``maximum`` accept any listed
    class, ``better`` all but the first (weakest).
    """

    classes: tuple[str, ...]
    comparison: str = "exact"

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.classes[1:] if self.comparison == "better" else self.classes


def required_authn_context(value: Any) -> RequiredAuthnContext | None:
    """A string, a list of class refs, or ``{"classes": [...], "comparison": ...}``; None: nothing required.

    Raises ``ValueError`` for anything else (the system check ``saml_jit.E030`` reports it).
    """
    if value is None or isinstance(value, RequiredAuthnContext):
        return value
    comparison = "exact"
    if isinstance(value, Mapping):
        unknown = set(value) - {"classes", "comparison"}
        comparison = value.get("comparison", "exact")
        value = value.get("classes")
        if unknown or comparison not in COMPARISONS:
            raise ValueError("REQUIRED_AUTHN_CONTEXT takes 'classes' and a comparison of " + ", ".join(COMPARISONS))
    classes = (value,) if isinstance(value, str) else tuple(value or ())
    if not classes or not all(isinstance(name, str) and name for name in classes):
        raise ValueError("REQUIRED_AUTHN_CONTEXT needs at least one class reference (a non-empty string)")
    if comparison == "better" and len(classes) < 2:
        raise ValueError("REQUIRED_AUTHN_CONTEXT with 'better' needs a weaker class first and a stronger one after it")
    return RequiredAuthnContext(classes, comparison)


@dataclass(frozen=True)
class IdPSettings:
    """The effective settings for one identity provider.

    Built from the defaults, then the top level of ``SAML_JIT``, then
    ``SAML_JIT["IDPS"][entity_id]``.
    """

    entity_id: str
    #: Create an account on the first login of an unknown identity.
    CREATE_USERS: bool = True
    #: Attribute names that carry the subject; empty means the NameID
    #: (persistent or unspecified format; transient NameIDs are refused).
    SUBJECT_ATTRIBUTE: tuple[str, ...] = ()
    #: User model field -> attribute names (friendly, URI or claim form).
    ATTRIBUTE_MAP: Mapping[str, tuple[str, ...]] = None  # type: ignore[assignment]
    #: Profile fields that must be present, or the login is denied.
    REQUIRED_ATTRIBUTES: tuple[str, ...] = ()
    #: Field -> "always" | "on_create". Fields not listed use "always";
    #: the username field defaults to "on_create" (accounts are not renamed).
    SYNC: Mapping[str, str] = None  # type: ignore[assignment]
    #: Email domains allowed to sign in ("example.org", "*.example.org").
    #: Empty allows any domain.
    ALLOWED_EMAIL_DOMAINS: tuple[str, ...] = ()
    #: New accounts are active at once; False holds them for approval.
    NEW_USERS_ACTIVE: bool = True
    #: Bind an unknown identity to an existing local account with the same
    #: email. Off by default: whoever controls the IdP could then sign in as
    #: any local account that shares an address with one of its users.
    LINK_BY_EMAIL: bool = False
    #: How a new username is chosen when the username field is not the email.
    USERNAME_SOURCE: str = USERNAME_FROM_EMAIL
    #: Attribute names whose values may be stored on events (allow-list).
    EVENT_ATTRIBUTES: tuple[str, ...] = ()

    # -- groups and privileges ---------------------------------------------
    #: Attribute names that carry group values.
    GROUPS_ATTRIBUTE: tuple[str, ...] = DEFAULT_GROUPS_ATTRIBUTE
    #: Attribute names whose presence signals a group overage (Entra ID).
    GROUPS_OVERAGE_ATTRIBUTE: tuple[str, ...] = DEFAULT_GROUPS_OVERAGE_ATTRIBUTE
    #: Asserted group value -> Django group name(s).
    GROUP_MAP: Mapping[str, tuple[str, ...]] = None  # type: ignore[assignment]
    #: Regular expression; asserted values that match it in full are used as
    #: Django group names as they are. None: only GROUP_MAP counts.
    GROUP_PATTERN: str | None = None
    #: Create Django groups that a mapping names but that do not exist yet.
    CREATE_GROUPS: bool = False
    #: Asserted group values of which at least one is needed to sign in.
    REQUIRED_GROUPS: tuple[str, ...] = ()
    #: Asserted group values that make the account staff.
    STAFF_GROUPS: tuple[str, ...] = ()
    #: Asserted group values that make the account superuser: only with
    #: ALLOW_SUPERUSER (a system check warns while it is on).
    SUPERUSER_GROUPS: tuple[str, ...] = ()
    ALLOW_SUPERUSER: bool = False
    #: Django group names whose SAML grants expire unless re-asserted.
    PRIVILEGED_GROUPS: tuple[str, ...] = ()
    #: Seconds a privileged grant (privileged groups, staff, superuser from
    #: SAML) lasts without a fresh login asserting it. None: no expiry.
    PRIVILEGE_TTL: int | None = 8 * 3600

    # -- lifecycle -------------------------------------------------------------
    #: Days without evidence from this IdP (an assertion, a SCIM touch) after
    #: which ``saml_jit_lifecycle sweep`` suspends an account. None: never.
    DORMANT_AFTER: int | None = None
    #: A fresh SAML login from this IdP reactivates an account it suspended
    #: for dormancy (never one SCIM or an administrator took away).
    REACTIVATE_DORMANT: bool = True
    #: Accounts bound to this IdP may also sign in with a password. Off: only
    #: through SSO (``saml_jit.backends.PasswordBackend`` refuses them).
    ALLOW_PASSWORD_LOGIN: bool = True
    #: Email a person when an identity from this IdP is linked to or
    #: unlinked from their account (NIST SP 800-63C-4 §3.7.1).
    NOTIFY_IDENTITY_CHANGES: bool = False

    # -- protocol -----------------------------------------------------------
    #: Accept IdP-initiated (unsolicited) logins from this IdP: responses
    #: without InResponseTo. A response that names a request still has to
    #: answer one this browser made.
    ALLOW_IDP_INITIATED: bool = False
    #: Accept RSA-SHA1 signatures and SHA-1 digests from this IdP.
    ALLOW_SHA1: bool = False
    #: Decrypt AES-CBC encrypted assertions from this IdP (AES-GCM otherwise
    #: only): CBC is malleable, the ground of decryption-oracle attacks.
    ALLOW_CBC_ENCRYPTION: bool = False
    #: Refuse HTTP-Redirect logout messages from this IdP unless they are
    #: signed with a certificate from its metadata.
    REQUIRE_SIGNED_LOGOUT: bool = True

    # -- sessions and authentication context ---------------------------------
    #: Seconds a Django session from this IdP lasts at most. The assertion's
    #: SessionNotOnOrAfter always caps it too; the session ends at the
    #: earliest of the two (and of Django's own SESSION_COOKIE_AGE). None: no cap of its own.
    MAX_SESSION_AGE: int | None = None
    #: Seconds an AuthnInstant may be old when saml_jit asked for ForceAuthn
    #: (the step-up link): an older one is refused as ``stale_authn`` (saml2int SDP-SP13).
    FORCE_AUTHN_MAX_AGE: int = 300
    #: An IdP-initiated LogoutRequest ends every session the person holds from
    #: this IdP, not only the browser's that received it.
    LOGOUT_ALL_SESSIONS: bool = False
    #: Sent as RequestedAuthnContext, and enforced on the response
    #: (``authn_context_insufficient``). Never sent unless set: see the README.
    REQUIRED_AUTHN_CONTEXT: RequiredAuthnContext | None = None
    #: Privileged grants (staff, superuser, PRIVILEGED_GROUPS) only from an
    #: assertion whose context shows MFA (MFA_AUTHN_CONTEXTS).
    PRIVILEGES_REQUIRE_MFA: bool = False
    #: AuthnContextClassRef values, and authnmethodsreferences values, that show MFA.
    MFA_AUTHN_CONTEXTS: tuple[str, ...] = DEFAULT_MFA_AUTHN_CONTEXTS

    # -- SCIM ----------------------------------------------------------------
    #: The SCIM User attribute that equals this IdP's SAML subject for the
    #: same person ("externalId" or "userName"): it becomes the identity
    #: binding, so a user created over SCIM is the account SAML lands on.
    SCIM_SUBJECT_ATTRIBUTE: str = "externalId"
    #: With SCIM_SUBJECT_ATTRIBUTE = "externalId": a user sent without
    #: externalId (Okta's default) is bound by its userName instead of refused.
    SCIM_USERNAME_FALLBACK: bool = False

    @property
    def manages_groups(self) -> bool:
        """Whether logins from this IdP touch groups or privileges at all."""
        return bool(
            self.GROUP_MAP or self.GROUP_PATTERN or self.REQUIRED_GROUPS or self.STAFF_GROUPS or self.SUPERUSER_GROUPS
        )

    def sync_mode(self, field: str, username_field: str) -> str:
        default = SYNC_ON_CREATE if field == username_field else SYNC_ALWAYS
        return self.SYNC.get(field, default)


PER_IDP_KEYS = frozenset(f.name for f in fields(IdPSettings) if f.name != "entity_id")

GLOBAL_DEFAULTS: dict[str, Any] = {
    #: Dotted path of the policy class (the extension point).
    "POLICY": "saml_jit.policy.Policy",
    #: Template rendered for rejected and denied logins.
    "ERROR_TEMPLATE": "saml_jit/error.html",
    #: Where the error page's "Home" link goes (a URL or URL name); None: LOGIN_REDIRECT_URL, else "/".
    "HOME_URL": None,
    #: Per-IdP overrides, keyed by entity ID.
    "IDPS": {},
    #: Largest accepted SAMLResponse (base64 characters); larger gets a 413.
    "MAX_RESPONSE_SIZE": 512 * 1024,
    #: Where consumed assertion IDs are kept: "database" or "cache".
    "REPLAY_STORE": "database",
    #: The Django cache alias for REPLAY_STORE = "cache".
    "REPLAY_CACHE": "default",
    #: Seconds of clock difference tolerated (response age, replay records).
    "CLOCK_SKEW": 180,
    #: Oldest accepted Response IssueInstant, in seconds (plus CLOCK_SKEW).
    "MAX_RESPONSE_AGE": 300,
    #: "xmlsec" (in-process, saml_jit.saml.backend) or "xmlsec1" (pysaml2 starts the xmlsec1 program).
    "CRYPTO_BACKEND": "xmlsec",
    #: Loader whose SPConfig saml_jit caches (dotted path); None: SAML_CONFIG_LOADER or SAML_CONFIG.
    "CONFIG_LOADER": None,
    #: Seconds before the cached SP configuration (and metadata) is rebuilt; None: only on refresh().
    "CONFIG_MAX_AGE": 3600,
    #: Seconds before a failed rebuild is retried (the old configuration stays in use).
    "CONFIG_RETRY": 60,
    #: False: build the SP configuration per request (request-dependent loaders).
    "CONFIG_CACHE": True,
    #: Dotted path of request -> hashable: one cached configuration per value.
    "CONFIG_CACHE_KEY": None,
    #: SCIM: the User attribute that must equal the SAML subject of the same
    #: person ("externalId" or "userName"); it becomes the identity binding.
    "SCIM_SUBJECT_ATTRIBUTE": "externalId",
    #: SCIM: DELETE /Users/<id> deletes the account row instead of deactivating it.
    "SCIM_HARD_DELETE": False,
    #: SCIM: largest accepted request body in bytes; larger gets a 413.
    "SCIM_MAX_BODY": 1024 * 1024,
    #: SCIM: resources per page when the client asks for none, and the most it gets.
    "SCIM_PAGE_SIZE": 100,
    #: SCIM: at most one "token refused" event per client address in this many seconds.
    "SCIM_REFUSAL_EVENT_INTERVAL": 60,
    #: IdP metadata saml_jit fetches, checks and refreshes itself (saml_jit.saml.metadata): a list of
    #: {"url": ... or "file": ..., "cert": signer certificate file (optional)}, or plain URLs/paths.
    "METADATA": [],
    #: Seconds between two fetches of each METADATA source (sooner when its cacheDuration says so).
    "METADATA_REFRESH": 6 * 3600,
    #: Seconds before a failed fetch is tried again (the last good copy keeps serving meanwhile).
    "METADATA_RETRY": 300,
    #: Seconds an HTTP metadata fetch may take.
    "METADATA_TIMEOUT": 10,
    #: Largest accepted metadata document, in bytes.
    "METADATA_MAX_SIZE": 10 * 1024 * 1024,
    #: The Django cache alias holding the last good copies (shared by every node) and the fetch lock.
    "METADATA_CACHE": "default",
    #: A directory for a per-node copy of the last good metadata (survives a cache flush); None: none.
    "METADATA_DIR": None,
    #: Days before an IdP certificate's expiry from which the system check warns.
    "METADATA_CERT_WARNING_DAYS": 30,
}

KNOWN_KEYS = PER_IDP_KEYS | frozenset(GLOBAL_DEFAULTS)

_TUPLE_KEYS = (
    "SUBJECT_ATTRIBUTE",
    "REQUIRED_ATTRIBUTES",
    "ALLOWED_EMAIL_DOMAINS",
    "EVENT_ATTRIBUTES",
    "GROUPS_ATTRIBUTE",
    "GROUPS_OVERAGE_ATTRIBUTE",
    "REQUIRED_GROUPS",
    "STAFF_GROUPS",
    "SUPERUSER_GROUPS",
    "PRIVILEGED_GROUPS",
    "MFA_AUTHN_CONTEXTS",
)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    for key in _TUPLE_KEYS:
        if key in values:
            values[key] = _as_tuple(values[key])
    if "ATTRIBUTE_MAP" in values:
        values["ATTRIBUTE_MAP"] = {field: _as_tuple(names) for field, names in dict(values["ATTRIBUTE_MAP"]).items()}
    if "SYNC" in values:
        values["SYNC"] = dict(values["SYNC"])
    if "GROUP_MAP" in values:
        values["GROUP_MAP"] = {asserted: _as_tuple(names) for asserted, names in dict(values["GROUP_MAP"]).items()}
    dormant = values.get("DORMANT_AFTER")
    if isinstance(dormant, timedelta):
        values["DORMANT_AFTER"] = dormant.days
    for key in ("PRIVILEGE_TTL", "MAX_SESSION_AGE", "FORCE_AUTHN_MAX_AGE"):
        if isinstance(values.get(key), timedelta):
            values[key] = int(values[key].total_seconds())
    if "REQUIRED_AUTHN_CONTEXT" in values:
        values["REQUIRED_AUTHN_CONTEXT"] = required_authn_context(values["REQUIRED_AUTHN_CONTEXT"])
    return values


T = TypeVar("T")


class _Global(Generic[T]):
    """One global setting: read from ``settings.SAML_JIT`` on every access, converted to its type.

    A value that cannot be converted raises here (and fails closed); the
    system checks in :mod:`saml_jit.checks` report it at start-up instead.
    """

    def __init__(self, convert: Callable[[Any], T]) -> None:
        self.convert = convert
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: AppSettings | None, owner: type | None = None) -> T:
        if obj is None:
            raise AttributeError(self.name)
        return self.convert(obj.raw.get(self.name, GLOBAL_DEFAULTS[self.name]))


def _optional_seconds(value: Any) -> float | None:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return float(value) if value else None


def _optional(value: Any) -> Any:
    return value or None


def _mapping(value: Any) -> dict[str, dict[str, Any]]:
    return dict(value or {})


class AppSettings:
    """Typed, lazy access to ``settings.SAML_JIT``: one property per global setting.

    Per-IdP settings are read through :meth:`for_idp`. Nothing else in the
    package reads ``settings.SAML_JIT``.
    """

    POLICY: _Global[str] = _Global(str)
    ERROR_TEMPLATE: _Global[str] = _Global(str)
    #: A URL or URL name; None: ``LOGIN_REDIRECT_URL``, else ``"/"``.
    HOME_URL: _Global[str | None] = _Global(_optional)
    IDPS: _Global[dict[str, dict[str, Any]]] = _Global(_mapping)
    MAX_RESPONSE_SIZE: _Global[int] = _Global(int)
    REPLAY_STORE: _Global[str] = _Global(str)
    REPLAY_CACHE: _Global[str] = _Global(str)
    CLOCK_SKEW: _Global[int] = _Global(int)
    MAX_RESPONSE_AGE: _Global[int] = _Global(int)
    CRYPTO_BACKEND: _Global[str] = _Global(str)
    #: A dotted path or a callable taking the request.
    CONFIG_LOADER: _Global[Any] = _Global(_optional)
    CONFIG_MAX_AGE: _Global[float | None] = _Global(_optional_seconds)
    CONFIG_RETRY: _Global[float] = _Global(float)
    CONFIG_CACHE: _Global[bool] = _Global(bool)
    #: A dotted path or a callable ``request -> hashable``.
    CONFIG_CACHE_KEY: _Global[Any] = _Global(_optional)
    SCIM_SUBJECT_ATTRIBUTE: _Global[str] = _Global(str)
    SCIM_HARD_DELETE: _Global[bool] = _Global(bool)
    SCIM_MAX_BODY: _Global[int] = _Global(int)
    SCIM_PAGE_SIZE: _Global[int] = _Global(int)
    SCIM_REFUSAL_EVENT_INTERVAL: _Global[int] = _Global(int)
    METADATA: _Global[list[Any]] = _Global(list)
    METADATA_REFRESH: _Global[float] = _Global(float)
    METADATA_RETRY: _Global[float] = _Global(float)
    METADATA_TIMEOUT: _Global[float] = _Global(float)
    METADATA_MAX_SIZE: _Global[int] = _Global(int)
    METADATA_CACHE: _Global[str] = _Global(str)
    METADATA_DIR: _Global[str | None] = _Global(_optional)
    METADATA_CERT_WARNING_DAYS: _Global[int] = _Global(int)

    @property
    def raw(self) -> dict[str, Any]:
        """``settings.SAML_JIT`` as given (for the system checks)."""
        return dict(getattr(settings, "SAML_JIT", None) or {})

    def for_idp(self, entity_id: str) -> IdPSettings:
        """The effective settings for ``entity_id`` (defaults < global < IdP)."""
        raw = self.raw
        values: dict[str, Any] = {"ATTRIBUTE_MAP": DEFAULT_ATTRIBUTE_MAP, "SYNC": {}, "GROUP_MAP": {}}
        values.update({k: v for k, v in raw.items() if k in PER_IDP_KEYS})
        overrides = dict(raw.get("IDPS") or {}).get(entity_id) or {}
        values.update({k: v for k, v in overrides.items() if k in PER_IDP_KEYS})
        return IdPSettings(entity_id=entity_id, **_normalise(values))


app_settings = AppSettings()
