"""Hostile SAML responses through the real ACS view, compared with stock djangosaml2.

Every case mints a response with :class:`saml_jit.testing.idp.TestIdP`
(signed for real, validated by pysaml2 for real: nothing is mocked), answers
a real AuthnRequest from ``/saml2/login/`` and posts it to saml_jit's ACS.
The contract for a refused response (:func:`assert_refused`):

* a 4xx status (the test client re-raises view exceptions, so a 500 fails
  the test) and saml_jit's error page naming the reason code;
* no user, identity, group membership or grant created or changed, and no
  one signed in;
* exactly one new event, ``rejected`` or ``denied``, with the expected
  ``reason_code``.

Then the same crafted response goes to stock djangosaml2's ACS
(``/stock-saml2/acs/``, with ``djangosaml2.backends.Saml2Backend`` and the
attribute mapping from djangosaml2's documentation) in the same browser
session: minted again with the same options for a fresh request from
``/saml2/login/`` (saml_jit used the first one up; see :class:`Crafted`). :func:`stock_acs` reports what
stock did; most tests assert it signed someone in, created a user or crashed
with a 500. Where stock refuses too, the test says so (``stock_refuses``) so
the report stays honest about which cases are saml_jit's own.
"""

from __future__ import annotations

import base64
import copy
import shutil
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from saml2.saml import SCM_HOLDER_OF_KEY, SCM_SENDER_VOUCHES
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

from saml_jit.conf import DEFAULT_ATTRIBUTE_MAP
from saml_jit.models import EventKind, FederatedIdentity, Grant, ProvisioningEvent
from saml_jit.testing.idp import ATTRIBUTE_URIS
from tests.conftest import person
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, IDP_B, SP_ENTITY_ID

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("crypto_backend")]  # both crypto backends

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
default_user_model_only = pytest.mark.skipif(EMAIL_KEYED, reason="needs a user model with a separate username")

SUBJECT = "subject-alice-0001"
UID = ATTRIBUTE_URIS["uid"]
MAIL = ATTRIBUTE_URIS["mail"]
STOCK_BACKENDS = ["djangosaml2.backends.Saml2Backend"]
#: saml_jit configured to take the username from ``uid`` (the "username-like value").
USERNAME_FROM_UID = {
    "ATTRIBUTE_MAP": {**DEFAULT_ATTRIBUTE_MAP, "username": (UID, "uid")},
    "USERNAME_SOURCE": "attribute",
}


def attrs(uid: str | None = "alice", **kwargs) -> dict[str, list[str]]:
    """Alice's attributes plus ``uid`` (what stock djangosaml2 keys users on)."""
    attributes = person(**kwargs)
    if uid is not None:
        attributes[UID] = [uid]
    return attributes


# --------------------------------------------------------------------------
# Minting and posting


class Crafted(dict):
    """The POST body of a minted response, and how to mint it again.

    saml_jit's ACS uses up the browser's outstanding request once pysaml2 has
    accepted the response (denials included), so the stock comparison gets
    the *same* crafted response minted again for a fresh request from the
    same browser (:meth:`again`): only IDs, InResponseTo and timestamps differ.
    """

    def __init__(self, browser, idp, start: bool, kwargs: dict) -> None:
        self.browser, self.idp, self.start, self.kwargs = browser, idp, start, kwargs
        super().__init__(self._mint(fixed_in_response_to="in_response_to" in kwargs))

    def _mint(self, fixed_in_response_to: bool) -> dict[str, str]:
        kwargs = dict(self.kwargs)
        if self.start:
            request_id = self.browser.start_login(self.idp)
            if not fixed_in_response_to:
                kwargs["in_response_to"] = request_id
        kwargs.setdefault("name_id", SUBJECT)
        kwargs.setdefault("attributes", attrs())
        kwargs.setdefault("sp_entity_id", SP_ENTITY_ID)
        kwargs.setdefault("acs_url", ACS_URL)
        kwargs.setdefault("friendly_names", FRIENDLY_NAMES)
        return self.idp.post_data(**kwargs)

    def again(self) -> dict[str, str]:
        return self._mint(fixed_in_response_to="in_response_to" in self.kwargs)


def craft(browser, idp=IDP_A, *, start: bool = True, **kwargs) -> Crafted:
    """Start a real login in this browser (unless ``start=False``) and mint the
    POST body of a response to it; ``kwargs`` go to ``TestIdP.make_response``
    (``in_response_to`` defaults to the request just made)."""
    return Crafted(browser, idp, start, kwargs)


def post(browser, data: dict[str, str], relay_state: str | None = None):
    """POST to saml_jit's ACS. Exceptions propagate: a 500 fails the test."""
    if relay_state is not None:
        data = {**data, "RelayState": relay_state}
    return browser.client.post(reverse("saml2_acs"), data)


# --------------------------------------------------------------------------
# The contract


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused login must leave as it was."""

    users: list
    identities: list
    memberships: list
    groups: list
    grants: list
    last_event: int
    session_user: str | None

    @classmethod
    def take(cls, browser) -> Snapshot:
        user_fields = [f.attname for f in User._meta.concrete_fields]
        return cls(
            users=sorted(User.objects.values_list(*user_fields), key=repr),
            identities=sorted(FederatedIdentity.objects.values_list(), key=repr),
            memberships=sorted(User.groups.through.objects.values_list()),
            groups=sorted(Group.objects.values_list("name", flat=True)),
            grants=sorted(Grant.objects.values_list(), key=repr),
            last_event=max(ProvisioningEvent.objects.values_list("pk", flat=True), default=0),
            session_user=browser.client.session.get("_auth_user_id"),
        )


def assert_refused(browser, response, before: Snapshot, kind: str, code: str, status: int | None = None):
    """4xx error page, nothing changed, exactly one ``kind`` event with ``code``."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:2000])
    if status is not None:
        assert response.status_code == status, response.content[:2000]
    assert b"Sign-in failed" in response.content
    assert f"<code>{code}</code>".encode() in response.content, response.content[:2000]
    after = Snapshot.take(browser)
    assert after.users == before.users
    assert after.identities == before.identities
    assert after.memberships == before.memberships
    assert after.groups == before.groups
    assert after.grants == before.grants
    assert after.session_user == before.session_user
    new = list(ProvisioningEvent.objects.filter(pk__gt=before.last_event))
    assert [(e.kind, e.reason_code) for e in new] == [(kind, code)]
    assert f"#{new[0].pk}".encode() in response.content
    return new[0]


def refused(browser, data, kind: str, code: str, status: int | None = None, relay_state: str | None = None):
    before = Snapshot.take(browser)
    response = post(browser, data, relay_state)
    return assert_refused(browser, response, before, kind, code, status)


def rejected(browser, data, code: str, status: int | None = 400):
    return refused(browser, data, EventKind.REJECTED, code, status)


def denied(browser, data, code: str):
    return refused(browser, data, EventKind.DENIED, code, 403)


# --------------------------------------------------------------------------
# Stock djangosaml2, for comparison


@dataclass
class StockOutcome:
    status: int
    logged_in_as: str | None = None
    created: list[str] = field(default_factory=list)
    superusers: list[str] = field(default_factory=list)

    @property
    def worse(self) -> bool:
        """Stock signed someone in, created an account or crashed."""
        return self.status >= 500 or self.logged_in_as is not None or bool(self.created)

    def __str__(self) -> str:
        return f"status={self.status} logged_in_as={self.logged_in_as!r} created={self.created!r}"


def stock_acs(
    browser,
    settings,
    data: dict[str, str],
    *,
    name_id_as_username: bool = False,
    allow_unsolicited: bool = False,
    mapping: dict | None = None,
    relay_state: str | None = None,
) -> StockOutcome:
    """POST ``data`` to stock djangosaml2's ACS, configured as its documentation says."""
    if not shutil.which("xmlsec1"):
        pytest.skip("stock djangosaml2 needs the xmlsec1 program for the comparison")
    settings.AUTHENTICATION_BACKENDS = STOCK_BACKENDS
    if EMAIL_KEYED:
        settings.SAML_DJANGO_USER_MAIN_ATTRIBUTE = "email"
        settings.SAML_ATTRIBUTE_MAPPING = mapping or {"mail": ("email",)}
    else:
        settings.SAML_ATTRIBUTE_MAPPING = mapping or {"mail": ("email",), "uid": ("username",)}
    settings.SAML_USE_NAME_ID_AS_USERNAME = name_id_as_username
    if allow_unsolicited:
        # Stock's only way to accept IdP-initiated logins: for every IdP, any InResponseTo.
        config = copy.deepcopy(settings.SAML_CONFIG)
        config["service"]["sp"]["allow_unsolicited"] = True
        settings.SAML_CONFIG = config
    if browser.client.session.get("_auth_user_id"):
        browser.client.logout()  # djangosaml2's login view skips signed-in users
    if isinstance(data, Crafted):
        data = data.again()
    before = set(User.objects.values_list("pk", flat=True))
    if relay_state is not None:
        data = {**data, "RelayState": relay_state}
    browser.client.raise_request_exception = False
    try:
        response = browser.client.post(reverse("stock_acs"), data)
    finally:
        browser.client.raise_request_exception = True
    outcome = StockOutcome(status=response.status_code)
    outcome.response = response  # type: ignore[attr-defined]
    if outcome.status >= 500:
        # On PostgreSQL the crash (e.g. a DataError) leaves the test's transaction unusable.
        return outcome
    outcome.created = [u.get_username() for u in User.objects.exclude(pk__in=before)]
    outcome.superusers = [u.get_username() for u in User.objects.filter(is_superuser=True)]
    session_user = browser.client.session.get("_auth_user_id")
    if session_user is not None:
        outcome.logged_in_as = User.objects.get(pk=session_user).get_username()
    outcome.response = response  # type: ignore[attr-defined]
    return outcome


def assert_stock_worse(outcome: StockOutcome) -> None:
    assert outcome.worse, f"stock djangosaml2 refused this too: {outcome}"


# ==========================================================================
# Responses pysaml2 returns no assertion for (stock: 500)


@pytest.mark.parametrize("sign_response", [True, False], ids=["signed-response", "signed-assertion-only"])
def test_wrong_destination(browser, settings, sign_response):
    # pysaml2 returns no response for it; saml_jit refuses the claimed
    # Destination before the signature check (reason wrong_destination).
    data = craft(browser, destination="https://evil.example/acs", sign_response=sign_response)
    rejected(browser, data, "wrong_destination")
    stock = stock_acs(browser, settings, data)
    assert stock.status == 500, stock


def test_stale_response_issue_instant(browser, settings):
    # The Response was issued two days ago (outside pysaml2's one-day window);
    # the assertion inside is fresh and valid.
    data = craft(browser, response_issue_instant=-2 * 86400)
    rejected(browser, data, "no_assertion")
    stock = stock_acs(browser, settings, data)
    assert stock.status == 500, stock


def test_response_issued_two_hours_ago(browser):
    data = craft(browser, response_issue_instant=-2 * 3600)
    rejected(browser, data, "stale_response")


@pytest.mark.parametrize("sign_response", [True, False], ids=["signed-response", "signed-assertion-only"])
def test_old_assertion_in_a_fresh_response(browser, settings, sign_response):
    # A signed assertion issued an hour ago, still inside its own (long)
    # validity, in a response issued now: a captured assertion re-wrapped
    # (with sign_response=False the wrapper needs no IdP key at all).
    data = craft(browser, now=-3600, lifetime=3 * 3600, response_issue_instant=0, sign_response=sign_response)
    rejected(browser, data, "stale_response")
    stock = stock_acs(browser, settings, data)
    assert_stock_worse(stock)


# ==========================================================================
# Subject confirmation and audience


def test_bearer_recipient_not_our_acs(browser, settings):
    data = craft(browser, recipient="https://evil.example/acs")
    event = rejected(browser, data, "subject_confirmation")
    assert event.idp_entity_id == IDP_A.entity_id
    stock = stock_acs(browser, settings, data)
    assert stock.logged_in_as == stock.created[0] == ("alice@example.org" if EMAIL_KEYED else "alice"), stock


def test_bearer_without_not_on_or_after(browser, settings):
    data = craft(browser, confirmation_not_on_or_after=False)
    rejected(browser, data, "subject_confirmation")
    assert_stock_worse(stock_acs(browser, settings, data))


def test_no_audience_restriction(browser, settings):
    data = craft(browser, audience_restriction=False)
    rejected(browser, data, "wrong_audience")
    assert_stock_worse(stock_acs(browser, settings, data))


def test_wrong_audience(browser, settings):
    data = craft(browser, audience="https://other-sp.example/metadata")
    rejected(browser, data, "wrong_audience")
    stock = stock_acs(browser, settings, data)
    # pysaml2 raises for a wrong audience; stock answers its own 403 page.
    assert (stock.status, stock.logged_in_as, stock.created) == (403, None, []), stock


def test_only_sender_vouches_confirmation(browser, settings):
    data = craft(browser, confirmation_method=SCM_SENDER_VOUCHES)
    rejected(browser, data, "subject_confirmation")
    assert_stock_worse(stock_acs(browser, settings, data))


def test_only_holder_of_key_confirmation(browser, settings):
    # pysaml2 itself finds no valid confirmation (no KeyInfo to hold).
    data = craft(browser, confirmation_method=SCM_HOLDER_OF_KEY)
    rejected(browser, data, "conditions_not_met")
    stock = stock_acs(browser, settings, data)
    assert (stock.status, stock.logged_in_as, stock.created) == (403, None, []), stock


# ==========================================================================
# InResponseTo and IdP-initiated login


def test_in_response_to_unknown_request(browser, settings):
    data = craft(browser, in_response_to="id-not-from-this-browser")
    rejected(browser, data, "unsolicited")
    stock = stock_acs(browser, settings, data)
    assert (stock.status, stock.logged_in_as, stock.created) == (403, None, []), stock


def test_in_response_to_unknown_request_with_idp_initiated_on(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_IDP_INITIATED": True}}}
    data = craft(browser, in_response_to="id-not-from-this-browser")
    rejected(browser, data, "unsolicited")
    # Stock's equivalent switch (allow_unsolicited) accepts any InResponseTo.
    stock = stock_acs(browser, settings, data, allow_unsolicited=True)
    assert stock.logged_in_as is not None, stock


def test_in_response_to_another_browsers_request(browser, settings):
    """Login CSRF: a response to a request the attacker's browser made, posted from the victim's."""
    from django.test import Client

    from tests.conftest import Browser

    attacker = Browser(Client())
    attackers_request = attacker.start_login()
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_IDP_INITIATED": True}}}
    data = craft(browser, in_response_to=attackers_request)  # the victim has a login of their own pending
    rejected(browser, data, "unsolicited")
    stock = stock_acs(browser, settings, data, allow_unsolicited=True)
    assert stock.logged_in_as is not None, stock


def test_idp_initiated_without_in_response_to_logs_in_when_enabled(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_IDP_INITIATED": True}}}
    data = craft(browser, start=False, in_response_to=None)
    response = post(browser, data)
    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert browser.client.session["_auth_user_id"] == str(user.pk)
    assert [e.kind for e in ProvisioningEvent.objects.all()] == [EventKind.CREATED]


def test_idp_initiated_refused_when_off(browser, settings):
    data = craft(browser, start=False, in_response_to=None)
    rejected(browser, data, "unsolicited")
    stock = stock_acs(browser, settings, data)
    assert (stock.status, stock.logged_in_as, stock.created) == (403, None, []), stock


def test_idp_initiated_enabled_for_another_idp_only(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"ALLOW_IDP_INITIATED": True}}}
    data = craft(browser, start=False, in_response_to=None)
    rejected(browser, data, "unsolicited")
    # Stock cannot say "this IdP only": turning allow_unsolicited on opens every IdP.
    stock = stock_acs(browser, settings, data, allow_unsolicited=True)
    assert stock.logged_in_as is not None, stock


# ==========================================================================
# SHA-1


@pytest.mark.parametrize(
    ("sign_alg", "digest_alg"),
    [
        pytest.param(SIG_RSA_SHA1, DIGEST_SHA1, id="rsa-sha1+sha1-digest"),
        pytest.param(SIG_RSA_SHA1, DIGEST_SHA256, id="rsa-sha1"),
        pytest.param(SIG_RSA_SHA256, DIGEST_SHA1, id="sha1-digest"),
    ],
)
def test_sha1_refused(browser, settings, sign_alg, digest_alg):
    data = craft(browser, sign_alg=sign_alg, digest_alg=digest_alg)
    rejected(browser, data, "weak_algorithm")
    assert_stock_worse(stock_acs(browser, settings, data))


def test_sha1_allowed_per_idp(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"ALLOW_SHA1": True}}}
    response = post(browser, craft(browser, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1))
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.count() == 1


def test_sha1_allowed_for_another_idp_only(browser, settings):
    settings.SAML_JIT = {"IDPS": {IDP_B.entity_id: {"ALLOW_SHA1": True}}}
    rejected(browser, craft(browser, sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1), "weak_algorithm")


# ==========================================================================
# DTDs


def _with_doctype(doctype: str):
    def tamper(xml: str) -> str:
        declaration, _, rest = xml.partition("?>")
        return f"{declaration}?>{doctype}{rest}"

    return tamper


@pytest.mark.parametrize(
    ("doctype", "stock_accepts"),
    [
        pytest.param("<!DOCTYPE ns0:Response>", True, id="bare"),
        pytest.param("<!DOCTYPE ns0:Response [<!ELEMENT ns0:Response ANY>]>", True, id="internal-subset"),
        # pysaml2 parses with defusedxml, which refuses entity declarations (stock: 403).
        pytest.param('<!DOCTYPE ns0:Response [<!ENTITY harmless "x">]>', False, id="unused-entity"),
    ],
)
def test_any_doctype_refused(browser, settings, doctype, stock_accepts):
    data = craft(browser, tamper=_with_doctype(doctype))
    rejected(browser, data, "dtd_forbidden")
    stock = stock_acs(browser, settings, data)
    if stock_accepts:
        assert stock.logged_in_as is not None, stock
    else:
        assert (stock.status, stock.logged_in_as, stock.created) == (403, None, []), stock


# ==========================================================================
# Identifiers: decided on what the XML said, never normalised


@pytest.mark.parametrize(
    ("name_id", "code"),
    [
        pytest.param(f" {SUBJECT}", "whitespace", id="leading-space"),
        pytest.param(f"{SUBJECT}\n", "control_characters", id="trailing-newline"),
        pytest.param(f"{SUBJECT}\t", "control_characters", id="trailing-tab"),
        pytest.param("subject\x7falice", "control_characters", id="DEL"),
        pytest.param("subject\x85alice", "control_characters", id="C1-NEL"),
        pytest.param(f"{SUBJECT}\u200b", "invisible_characters", id="zero-width-space"),
        pytest.param("s" * 257, "too_long", id="257-chars"),
    ],
)
def test_name_id_identifier_checks(browser, settings, name_id, code):
    data = craft(browser, name_id=name_id, attributes=attrs(uid=name_id))
    denied(browser, data, code)
    stock = stock_acs(browser, settings, data, name_id_as_username=True)
    assert_stock_worse(stock)


@default_user_model_only
@pytest.mark.parametrize(
    ("uid", "code"),
    [
        pytest.param("alice ", "whitespace", id="trailing-space"),
        pytest.param("\u00a0alice", "whitespace", id="leading-nbsp"),
        pytest.param("ali\u200bce", "invisible_characters", id="zero-width-space"),
        pytest.param("ali\u200dce", "invisible_characters", id="zero-width-joiner"),
        pytest.param("alice\u2028", "invisible_characters", id="line-separator"),
        pytest.param("\u0430lice", "non_ascii_username", id="cyrillic-a"),
        pytest.param("ali\x7fce", "control_characters", id="DEL"),
        pytest.param("a" * 151, "too_long", id="151-chars"),
    ],
)
def test_username_identifier_checks(browser, settings, uid, code):
    settings.SAML_JIT = USERNAME_FROM_UID
    data = craft(browser, attributes=attrs(uid=uid))
    denied(browser, data, code)
    stock = stock_acs(browser, settings, data)
    assert_stock_worse(stock)
    if code != "too_long":
        # Stock stores the look-alike, after pysaml2's str.strip().
        assert stock.created == [uid.strip()], stock


@pytest.mark.parametrize(
    ("email", "code"),
    [
        pytest.param("alice@example.org ", "whitespace", id="trailing-space"),
        pytest.param("alice@example.org\u200b", "invisible_characters", id="zero-width-space"),
        pytest.param("alice@example.org\x7f", "control_characters", id="DEL"),
        pytest.param("a" * 64 + "@" + ("b" * 60 + ".") * 4 + "org", "too_long", id="312-chars"),
    ],
)
def test_email_identifier_checks(browser, settings, email, code):
    data = craft(browser, attributes=attrs(email=email))
    denied(browser, data, code)
    stock = stock_acs(browser, settings, data)
    assert_stock_worse(stock)


def test_confusable_name_id_is_a_distinct_subject(browser):
    # A persistent NameID is opaque and matched exactly: a confusable one is
    # simply another subject and can never reach alice's identity.
    assert browser.login(name_id=SUBJECT).status_code == 302
    browser.client.logout()
    confusable = "subject-\u0430lice-0001"  # U+0430 CYRILLIC SMALL LETTER A
    response = post(browser, craft(browser, name_id=confusable, attributes=attrs(email="alice2@example.org")))
    assert response.status_code == 302
    assert sorted(FederatedIdentity.objects.values_list("subject", flat=True)) == sorted([SUBJECT, confusable])
    assert User.objects.count() == 2


@default_user_model_only
def test_confusable_name_id_as_username_denied(browser, settings):
    settings.SAML_JIT = {"USERNAME_SOURCE": "subject"}
    data = craft(browser, name_id="\u0430lice", attributes=attrs(uid="\u0430lice"))
    denied(browser, data, "non_ascii_username")
    assert_stock_worse(stock_acs(browser, settings, data, name_id_as_username=True))


def test_email_with_confusable_domain_denied(browser, settings):
    data = craft(browser, attributes=attrs(email="alice@exampl\u0435.org", uid="alice"))
    response = post(browser, data)
    assert response.status_code == 403, "the look-alike email was accepted"
    assert not User.objects.exists()
    assert [e.kind for e in ProvisioningEvent.objects.all()] == [EventKind.DENIED]


def test_subject_attribute_with_several_values(browser, settings):
    settings.SAML_JIT = {"SUBJECT_ATTRIBUTE": ["uid"]}
    data = craft(browser, attributes=attrs(uid=None) | {UID: ["alice", "mallory"]})
    denied(browser, data, "multiple_values")
    stock = stock_acs(browser, settings, data)
    assert stock.logged_in_as == ("alice@example.org" if EMAIL_KEYED else "alice"), stock


def test_duplicate_subject_attribute_elements(browser, settings):
    settings.SAML_JIT = {"SUBJECT_ATTRIBUTE": ["uid"]}
    attributes = [*attrs(uid=None).items(), (UID, ["alice"]), (UID, ["mallory"])]
    data = craft(browser, attributes=attributes)
    denied(browser, data, "duplicate_attribute")
    assert_stock_worse(stock_acs(browser, settings, data))


@pytest.mark.parametrize(
    "second", [pytest.param("mallory@evil.example", id="different"), pytest.param("alice@example.org", id="same")]
)
def test_duplicate_attribute_elements(browser, settings, second):
    attributes = [*attrs().items(), (MAIL, [second])]
    data = craft(browser, attributes=attributes)
    denied(browser, data, "duplicate_attribute")
    assert_stock_worse(stock_acs(browser, settings, data))


# -- an existing account is never reached through a look-alike identifier


@pytest.fixture
def alice(db):
    if EMAIL_KEYED:
        return User.objects.create_user(email="alice@example.org")
    return User.objects.create_user(username="alice", email="alice@example.org")


@default_user_model_only
@pytest.mark.parametrize(
    ("email", "uid", "code"),
    [
        pytest.param("alice@example.org ", "alice ", "whitespace", id="trailing-space"),
        pytest.param(" alice@example.org", " alice", "whitespace", id="leading-space"),
        pytest.param("alice@example.org\n", "alice\n", "control_characters", id="trailing-newline"),
        pytest.param("alice@example.org\u200b", "alice\u200b", "invisible_characters", id="zero-width-space"),
        pytest.param("\ufeffalice@example.org", "\ufeffalice", "invisible_characters", id="bom"),
    ],
)
def test_lookalike_email_never_links_to_existing_account(browser, settings, alice, email, uid, code):
    # Linking by email is on: only the identifier checks stand between the IdP and alice.
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {"LINK_BY_EMAIL": True, **USERNAME_FROM_UID}}}
    data = craft(browser, name_id="subject-mallory-0666", attributes=attrs(email=email, uid=uid))
    denied(browser, data, code)
    assert not FederatedIdentity.objects.exists()
    stock = stock_acs(browser, settings, data)
    assert_stock_worse(stock)
    if uid.strip() == "alice":
        # pysaml2 strips attribute values: stock signs the look-alike into alice's account.
        assert stock.logged_in_as == "alice" and stock.created == [], stock


@pytest.mark.parametrize(
    "name_id",
    [
        pytest.param(f"{SUBJECT} ", id="trailing-space"),
        pytest.param(f" {SUBJECT}", id="leading-space"),
        pytest.param(f"{SUBJECT}\u200b", id="zero-width-space"),
        pytest.param(f"\u200b{SUBJECT}", id="leading-zero-width-space"),
    ],
)
def test_lookalike_name_id_never_reaches_bound_account(browser, settings, name_id):
    assert browser.login(name_id=SUBJECT, attributes=attrs()).status_code == 302
    alice = User.objects.get()
    browser.client.logout()
    data = craft(browser, name_id=name_id, attributes=attrs(email="mallory@evil.example", uid="mallory"))
    event = denied(browser, data, "whitespace" if name_id.strip() != name_id else "invisible_characters")
    assert event.user is None
    assert FederatedIdentity.objects.get().user == alice
    stock = stock_acs(browser, settings, data, name_id_as_username=True)
    assert_stock_worse(stock)


# ==========================================================================
# Privileged fields are never written from attributes


PRIVILEGED_MAP = {
    **DEFAULT_ATTRIBUTE_MAP,
    "is_superuser": ("isSuperuser",),
    "is_staff": ("isStaff",),
    "is_active": ("isActive",),
    "password": ("userPassword",),
    "groups": ("memberOf",),
    "user_permissions": ("permissions",),
    "id": ("uidNumber",),
    "last_login": ("lastLogin",),
    "date_joined": ("created",),
}
PRIVILEGED_ATTRIBUTES = {
    "isSuperuser": ["True"],
    "isStaff": ["1"],
    "isActive": ["true"],
    "userPassword": ["md5$salt$0123456789abcdef0123456789abcdef"],
    "memberOf": ["admins"],
    "permissions": ["1"],
    "uidNumber": ["4242"],
    "lastLogin": ["2000-01-01T00:00:00Z"],
    "created": ["2000-01-01T00:00:00Z"],
}


def test_privileged_fields_never_written(browser, settings):
    admins = Group.objects.create(name="admins")
    settings.SAML_JIT = {"ATTRIBUTE_MAP": PRIVILEGED_MAP}
    response = post(browser, craft(browser, attributes=attrs() | PRIVILEGED_ATTRIBUTES))
    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get()
    assert (user.is_superuser, user.is_staff, user.is_active) == (False, False, True)
    assert not user.has_usable_password()
    assert user.pk != 4242
    assert not user.groups.exists() and not user.user_permissions.exists()
    assert user.date_joined.year != 2000 if hasattr(user, "date_joined") else True
    assert user.email == "alice@example.org"
    event = ProvisioningEvent.objects.get()
    assert set(event.diff) <= {"email", "first_name", "last_name", "username"}

    # A later login does not write them either, nor reactivate a deactivated account.
    user.is_active = False
    user.save()
    browser.client.logout()
    data = craft(browser, attributes=attrs() | PRIVILEGED_ATTRIBUTES)
    denied(browser, data, "inactive")
    user.refresh_from_db()
    assert (user.is_superuser, user.is_staff, user.is_active) == (False, False, False)
    assert admins.user_set.count() == 0


@default_user_model_only
def test_privileged_fields_stock_comparison(browser, settings):
    settings.SAML_JIT = {"ATTRIBUTE_MAP": PRIVILEGED_MAP}
    data = craft(browser, attributes=attrs() | PRIVILEGED_ATTRIBUTES)
    assert post(browser, data).status_code == 302
    assert not User.objects.get().is_superuser
    browser.client.logout()
    User.objects.all().delete()
    data = craft(browser, attributes=attrs() | PRIVILEGED_ATTRIBUTES)
    stock = stock_acs(
        browser,
        settings,
        data,
        mapping={
            "uid": ("username",),
            "mail": ("email",),
            "isSuperuser": ("is_superuser",),
            "isStaff": ("is_staff",),
        },
    )
    # Stock writes whatever the map names: the IdP makes a superuser.
    assert stock.logged_in_as == "alice" and stock.superusers == ["alice"], stock


# ==========================================================================
# The body: size and shape


def test_oversized_body_with_configured_limit(browser, settings):
    settings.SAML_JIT = {"MAX_RESPONSE_SIZE": 4000}
    data = craft(browser)
    assert len(data["SAMLResponse"]) > 4000
    rejected(browser, data, "response_too_large", status=413)
    assert_stock_worse(stock_acs(browser, settings, data))


def test_oversized_body_with_default_limit(browser, settings):
    # A validly signed response padded past the default 512 KiB.
    padding = {ATTRIBUTE_URIS["displayName"]: ["x" * (600 * 1024)]}
    data = craft(browser, attributes=attrs() | padding)
    assert len(data["SAMLResponse"]) > 512 * 1024
    rejected(browser, data, "response_too_large", status=413)
    assert_stock_worse(stock_acs(browser, settings, data))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _truncated() -> str:
    xml = IDP_A.make_response(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, name_id=SUBJECT, attributes=attrs())
    return _b64(xml.encode()[: len(xml) * 2 // 3])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"SAMLResponse": "%%% not base64 %%%"}, "malformed_response", id="malformed-base64"),
        pytest.param({"SAMLResponse": "PHNhbWw"}, "malformed_response", id="bad-base64-padding"),
        pytest.param({"SAMLResponse": _b64(b"hello, not XML")}, "malformed_response", id="non-xml"),
        pytest.param({"SAMLResponse": _b64(b"\xff\xfe\x00\x01")}, "malformed_response", id="binary"),
        pytest.param({"SAMLResponse": _truncated()}, "malformed_response", id="truncated-xml"),
        pytest.param({"SAMLResponse": ""}, "missing_response", id="empty"),
        pytest.param({}, "missing_response", id="missing"),
        pytest.param({"RelayState": "/"}, "missing_response", id="relay-state-only"),
    ],
)
def test_malformed_body(browser, settings, body, code):
    browser.start_login()
    before = Snapshot.take(browser)
    response = browser.client.post(reverse("saml2_acs"), body)
    assert_refused(browser, response, before, EventKind.REJECTED, code, 400)
    stock = stock_acs(browser, settings, body)
    # Recorded for the report; stock refuses these too (400/403), without evidence.
    assert not stock.logged_in_as and not stock.created, stock


# ==========================================================================
# RelayState: never an open redirect


@pytest.mark.parametrize(
    "relay_state",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:evil.example",
        "https:///evil.example",
        " //evil.example",
        "https://testserver.evil.example/",
        "https://evil.example@testserver/",
    ],
)
def test_relay_state_open_redirect(browser, settings, relay_state):
    response = post(browser, craft(browser), relay_state=relay_state)
    assert response.status_code == 302
    location = response["Location"]
    assert location == "/", location
    browser.client.logout()
    stock = stock_acs(browser, settings, craft(browser), relay_state=relay_state)
    # Stock uses the same djangosaml2 helper: recorded, not worse.
    assert stock.response["Location"] == "/"  # type: ignore[attr-defined]


def test_relay_state_local_path_honoured(browser):
    response = post(browser, craft(browser), relay_state="/ok/path/?a=1")
    assert response.status_code == 302
    assert response["Location"] == "/ok/path/?a=1"
