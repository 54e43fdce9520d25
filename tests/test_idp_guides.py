"""The guides per IdP (docs/idps/*.md): each settings snippet, applied, signs in a response shaped like that IdP's.

Every guide carries one ``<!-- snippet: name -->`` comment followed by a
fenced ``python`` block: what a site adds to its ``settings.py`` after its
``SAML_CONFIG`` and ``SAML_JIT``. The test executes that block (a guide whose
snippet does not load fails here), mints a signed response the way that IdP
sends it — NameID format, attribute names and name format, which element is
signed, encryption — and posts it through the real login and ACS views, with
both crypto backends. The account must get the username, email, names, groups and staff status the
guide promises. Attribute names the test sends must also appear in the
guide, so guide and test cannot drift apart silently.
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import override_settings
from saml2.saml import (
    NAMEID_FORMAT_EMAILADDRESS,
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NAMEID_FORMAT_UNSPECIFIED,
)

from saml_jit.config import saml_config
from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.testing.encryption import AES128_GCM, AES256_GCM, RSA_OAEP_MGF1P, Encryption
from saml_jit.testing.idp import ATTRIBUTE_URIS, FRIENDLY_NAMES, TestIdP, generate_keypair
from tests.conftest import Browser
from tests.federation import BASE_URL, KEYS, SP_CERT, SP_ENTITY_ID, SP_KEY

GUIDES = Path(__file__).resolve().parent.parent / "docs" / "idps"
SNIPPET = re.compile(r"<!-- snippet: (?P<name>[\w-]+) -->\s*```python\n(?P<code>.*?)```", re.DOTALL)

ENTRA = "http://schemas.microsoft.com/identity/claims/"
XMLSOAP = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
URI = ATTRIBUTE_URIS


@dataclass(frozen=True)
class Shape:
    """One response as the IdP sends it, and the account it must give."""

    name_id: str
    name_id_format: str
    attributes: dict[str, list[str]]
    #: The attributes' NameFormat: "uri", "basic", "unspecified", or None (no NameFormat, as Microsoft sends).
    name_format: str | None
    sign_response: bool
    sign_assertion: bool
    subject: str
    username: str
    email: str
    first_name: str
    last_name: str
    groups: set[str]
    is_staff: bool = False
    friendly_names: dict[str, str] | None = None
    encryption: Encryption | None = None
    #: Attribute names the guide must mention (default: every name sent).
    documented: tuple[str, ...] = field(default=())


SHAPES: dict[str, Shape] = {
    # Entra ID: the assertion signed (the default), default-namespace claims without NameFormat, the UPN
    # as an emailAddress NameID (the default "Unique User Identifier"), group object IDs.
    "entra": Shape(
        name_id="alice@contoso.example",
        name_id_format=NAMEID_FORMAT_EMAILADDRESS,
        attributes={
            f"{ENTRA}tenantid": ["3f2a7c1e-8b4d-4e6a-9c1f-2d5b7e9a0c43"],
            f"{ENTRA}objectidentifier": ["9d8b6e1a-4f3c-4b2a-8e7d-1c0f5a6b3e29"],
            f"{ENTRA}displayname": ["Alice Liddell"],
            f"{ENTRA}identityprovider": ["https://sts.windows.net/3f2a7c1e-8b4d-4e6a-9c1f-2d5b7e9a0c43/"],
            "http://schemas.microsoft.com/claims/authnmethodsreferences": [
                "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
            ],
            f"{XMLSOAP}givenname": ["Alice"],
            f"{XMLSOAP}surname": ["Liddell"],
            f"{XMLSOAP}emailaddress": ["Alice.Liddell@contoso.example"],
            f"{XMLSOAP}name": ["alice@contoso.example"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": [
                "b1c2d3e4-0000-4a5b-8c9d-0e1f2a3b4c5d",
                "f0e1d2c3-1111-4b5a-9d8c-7e6f5a4b3c2d",
                "00aa11bb-2222-4c3d-8e4f-5a6b7c8d9e0f",
            ],
        },
        name_format=None,
        sign_response=False,
        sign_assertion=True,
        subject="9d8b6e1a-4f3c-4b2a-8e7d-1c0f5a6b3e29",
        username="alice.liddell",
        email="Alice.Liddell@contoso.example",
        first_name="Alice",
        last_name="Liddell",
        groups={"Engineering", "Admins"},
        is_staff=True,
        documented=(
            f"{ENTRA}objectidentifier",
            f"{XMLSOAP}givenname",
            f"{XMLSOAP}surname",
            f"{XMLSOAP}emailaddress",
            f"{XMLSOAP}name",
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        ),
    ),
    # Okta: the Okta username as an Unspecified NameID, attribute statements with the names the admin typed
    # (Name format Unspecified, Okta's default), a group attribute statement; response and assertion signed.
    "okta": Shape(
        name_id="alice@example.com",
        name_id_format=NAMEID_FORMAT_UNSPECIFIED,
        attributes={
            "email": ["alice@example.com"],
            "firstName": ["Alice"],
            "lastName": ["Liddell"],
            "groups": ["app-engineering", "app-admins"],
        },
        name_format="unspecified",
        sign_response=True,
        sign_assertion=True,
        subject="alice@example.com",
        username="alice",
        email="alice@example.com",
        first_name="Alice",
        last_name="Liddell",
        groups={"Engineering", "Admins"},
        is_staff=True,
    ),
    # Google Workspace: a Persistent NameID carrying the Employee ID, mapped attributes with the names the
    # admin typed, group membership as group names; the assertion signed (Signed response off by default).
    "google": Shape(
        name_id="E-004217",
        name_id_format=NAMEID_FORMAT_PERSISTENT,
        attributes={
            "email": ["alice@example.com"],
            "firstName": ["Alice"],
            "lastName": ["Liddell"],
            "groups": ["Engineering", "All staff"],
        },
        name_format="unspecified",
        sign_response=False,
        sign_assertion=True,
        subject="E-004217",
        username="alice",
        email="alice@example.com",
        first_name="Alice",
        last_name="Liddell",
        groups={"Engineering"},
    ),
    # AD FS with SamlResponseSignature MessageOnly: the Response signed, the assertion not; objectGUID
    # (base64, as the LDAP store returns it) as a persistent NameID; claim URIs without NameFormat.
    "adfs": Shape(
        name_id="k1C5mZ0qV0y0l3qfZ4Qb7g==",
        name_id_format=NAMEID_FORMAT_PERSISTENT,
        attributes={
            f"{XMLSOAP}emailaddress": ["alice@corp.example.org"],
            f"{XMLSOAP}givenname": ["Alice"],
            f"{XMLSOAP}surname": ["Liddell"],
            f"{XMLSOAP}upn": ["alice@corp.example.org"],
            "http://schemas.xmlsoap.org/claims/Group": ["Domain Users", "App Engineering", "App Admins"],
        },
        name_format=None,
        sign_response=True,
        sign_assertion=False,
        subject="k1C5mZ0qV0y0l3qfZ4Qb7g==",
        username="alice",
        email="alice@corp.example.org",
        first_name="Alice",
        last_name="Liddell",
        groups={"Engineering", "Admins"},
        is_staff=True,
    ),
    # Shibboleth IdP v4+ defaults: the Response signed, the assertion unsigned and encrypted (AES-128-GCM,
    # RSA-OAEP); a transient NameID beside the SAML subject-id attribute; URI names with FriendlyNames.
    "shibboleth": Shape(
        name_id="AAdzZWNyZXQxQmTk0sQ2h7yXcNzHb6T5",
        name_id_format=NAMEID_FORMAT_TRANSIENT,
        attributes={
            URI["subject-id"]: ["4q7z2hk5mb3rqcv5@example.org"],
            URI["eduPersonPrincipalName"]: ["alice@example.org"],
            URI["uid"]: ["alice"],
            URI["mail"]: ["alice.liddell@example.org"],
            URI["givenName"]: ["Alice"],
            URI["sn"]: ["Liddell"],
            URI["displayName"]: ["Alice Liddell"],
            URI["isMemberOf"]: ["urn:mace:example.org:groups:engineering", "urn:mace:example.org:groups:staff"],
            URI["eduPersonScopedAffiliation"]: ["member@example.org", "staff@example.org"],
        },
        friendly_names=FRIENDLY_NAMES,
        name_format="uri",
        sign_response=True,
        sign_assertion=False,
        encryption=Encryption(data=AES128_GCM, key_transport=RSA_OAEP_MGF1P),
        subject="4q7z2hk5mb3rqcv5@example.org",
        username="alice",
        email="alice.liddell@example.org",
        first_name="Alice",
        last_name="Liddell",
        groups={"Engineering"},
        is_staff=True,
    ),
    # Keycloak: "Sign documents" on, "Sign assertions" off (the defaults); a persistent NameID; the X500
    # email/givenName/surname mappers (URI names) and a "Group list" mapper (attribute "member", full paths).
    "keycloak": Shape(
        name_id="G-3a1c9f0e-5b2d-4c7e-a8f1-6d4b2e9c0a17",
        name_id_format=NAMEID_FORMAT_PERSISTENT,
        attributes={
            "urn:oid:1.2.840.113549.1.9.1": ["alice@example.org"],
            URI["givenName"]: ["Alice"],
            URI["sn"]: ["Liddell"],
            "member": ["/engineering", "/engineering/admins"],
        },
        friendly_names={
            "urn:oid:1.2.840.113549.1.9.1": "email",
            URI["givenName"]: "givenName",
            URI["sn"]: "surname",
        },
        name_format="uri",
        sign_response=True,
        sign_assertion=False,
        subject="G-3a1c9f0e-5b2d-4c7e-a8f1-6d4b2e9c0a17",
        username="alice",
        email="alice@example.org",
        first_name="Alice",
        last_name="Liddell",
        groups={"Engineering", "Admins"},
        is_staff=True,
    ),
    # SimpleSAMLphp defaults: Basic names (uid, mail, givenName, sn, eduPersonAffiliation), response and
    # assertion signed, a persistent NameID from saml:PersistentNameID; encrypted with AES-256-GCM.
    "simplesamlphp": Shape(
        name_id="1f3c5e7a9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a",
        name_id_format=NAMEID_FORMAT_PERSISTENT,
        attributes={
            "uid": ["alice"],
            "mail": ["alice@example.org"],
            "givenName": ["Alice"],
            "sn": ["Liddell"],
            "eduPersonAffiliation": ["member", "staff"],
        },
        name_format="basic",
        sign_response=True,
        sign_assertion=True,
        encryption=Encryption(data=AES256_GCM, key_transport=RSA_OAEP_MGF1P),
        subject="1f3c5e7a9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a",
        username="alice",
        email="alice@example.org",
        first_name="Alice",
        last_name="Liddell",
        groups={"Staff"},
        is_staff=True,
    ),
}


def guide_paths() -> dict[str, Path]:
    """Guide name (its snippet's name) -> file; every Markdown file but the index is a guide."""
    found: dict[str, Path] = {}
    for path in sorted(GUIDES.glob("*.md")):
        if path.name == "README.md":
            continue
        names = [match["name"] for match in SNIPPET.finditer(path.read_text(encoding="utf-8"))]
        assert len(names) == 1, f"{path.name}: expected one '<!-- snippet: … -->' python block, found {names}"
        found[names[0]] = path
    return found


def load_snippet(path: Path, saml_config: dict) -> dict:
    """Execute a guide's snippet as settings.py would, after SAML_CONFIG and SAML_JIT; return its settings."""
    code = SNIPPET.search(path.read_text(encoding="utf-8"))["code"]  # type: ignore[index]
    namespace: dict = {"SAML_CONFIG": copy.deepcopy(saml_config), "SAML_JIT": {}}
    exec(compile(code, str(path), "exec"), namespace)  # the guide's own, committed snippet
    return namespace


def test_every_guide_has_a_shape_and_a_snippet():
    assert set(guide_paths()) == set(SHAPES)


def test_the_readme_links_every_guide():
    readme = (GUIDES.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Guides per IdP", 1)[1].split("\n## ", 1)[0]
    for path in guide_paths().values():
        assert f"(docs/idps/{path.name})" in section, path.name


@pytest.fixture(params=sorted(SHAPES))
def guide(request) -> str:
    return request.param


def _federation(name: str) -> tuple[TestIdP, dict]:
    """The guide's IdP (its entity ID from the snippet) and the settings the snippet gives the site."""
    path = guide_paths()[name]
    entity_id = _entity_id(load_snippet(path, {"service": {"sp": {}}}))
    key, cert = generate_keypair(KEYS, f"guide-{name}", f"saml_jit guide IdP {name}")
    idp = TestIdP(entity_id, key, cert, f"https://{name}.idp.example")
    config = saml_config(
        entity_id=SP_ENTITY_ID,
        base_url=BASE_URL,
        idp_metadata_xml=idp.metadata_xml(),
        key_file=SP_KEY,
        cert_file=SP_CERT,
    )
    return idp, load_snippet(path, config)


def _entity_id(namespace: dict) -> str:
    idps = list(namespace["SAML_JIT"].get("IDPS", {}))
    assert len(idps) == 1, f"a guide's snippet configures exactly one IdP under SAML_JIT['IDPS'], not {idps}"
    return idps[0]


def _login(browser: Browser, idp: TestIdP, shape: Shape, **changes):
    options = {
        "name_id": shape.name_id,
        "name_id_format": shape.name_id_format,
        "attributes": shape.attributes,
        "name_format": shape.name_format,
        "friendly_names": shape.friendly_names,
        "sign_response": shape.sign_response,
        "sign_assertion": shape.sign_assertion,
        **({"encrypt_for_cert": SP_CERT, "encryption": shape.encryption} if shape.encryption else {}),
    }
    return browser.login(idp, **{**options, **changes})


def _expected_username(shape: Shape) -> str:
    return shape.email if get_user_model().USERNAME_FIELD == "email" else shape.username


@pytest.fixture(params=["xmlsec", "xmlsec1"])
def backend(request) -> str:
    """Both crypto backends: in-process libxmlsec1 and pysaml2's xmlsec1 program."""
    if request.param == "xmlsec1" and not shutil.which("xmlsec1"):
        pytest.skip("the xmlsec1 program is not installed")
    return request.param


@pytest.mark.django_db
def test_the_guide_signs_in_a_response_shaped_like_its_idp(guide, backend, browser):
    shape = SHAPES[guide]
    idp, site = _federation(guide)
    groups = {name for names in site["SAML_JIT"]["IDPS"][idp.entity_id].get("GROUP_MAP", {}).values() for name in names}
    for name in groups:  # the site's groups exist already; saml_jit only manages memberships
        Group.objects.create(name=name)
    with override_settings(SAML_CONFIG=site["SAML_CONFIG"], SAML_JIT={**site["SAML_JIT"], "CRYPTO_BACKEND": backend}):
        response = _login(browser, idp, shape)
    assert response.status_code == 302, response.content[:2000]
    identity = FederatedIdentity.objects.get(idp_entity_id=idp.entity_id)
    user = identity.user
    assert identity.subject == shape.subject
    assert user.get_username() == _expected_username(shape)
    assert (user.email, user.first_name, user.last_name) == (shape.email, shape.first_name, shape.last_name)
    assert set(user.groups.values_list("name", flat=True)) == shape.groups
    assert user.is_staff is shape.is_staff
    assert not user.is_superuser
    assert ProvisioningEvent.objects.filter(kind=EventKind.CREATED, user=user).count() == 1


@pytest.mark.django_db
def test_the_guide_names_what_its_idp_sends(guide):
    shape = SHAPES[guide]
    text = guide_paths()[guide].read_text(encoding="utf-8")
    for name in shape.documented or tuple(shape.attributes):
        assert f"`{name}`" in text or f'"{name}"' in text, f"{guide}: the guide does not name {name}"


@pytest.mark.django_db
@pytest.mark.parametrize("guide_name", ["okta", "google"])
def test_the_idp_default_email_name_id_stays_refused(guide_name, browser):
    """Okta's and Google's default NameID format is emailAddress: the guides change it, saml_jit refuses it."""
    shape = SHAPES[guide_name]
    idp, site = _federation(guide_name)
    with override_settings(SAML_CONFIG=site["SAML_CONFIG"], SAML_JIT=site["SAML_JIT"]):
        response = _login(browser, idp, shape, name_id=shape.email, name_id_format=NAMEID_FORMAT_EMAILADDRESS)
    assert response.status_code == 403, response.content[:2000]
    assert not FederatedIdentity.objects.exists()
    assert ProvisioningEvent.objects.get(kind=EventKind.DENIED).reason_code == "email_name_id"


@pytest.mark.django_db
@pytest.mark.parametrize("guide_name", ["adfs", "shibboleth", "keycloak"])
def test_a_guide_that_accepts_a_signed_response_still_refuses_an_unsigned_one(guide_name, browser):
    """``want_assertions_or_response_signed`` accepts either signature, never neither."""
    idp, site = _federation(guide_name)
    with override_settings(SAML_CONFIG=site["SAML_CONFIG"], SAML_JIT=site["SAML_JIT"]):
        response = _login(browser, idp, SHAPES[guide_name], sign_response=False, sign_assertion=False)
    assert response.status_code == 400, response.content[:2000]
    assert not FederatedIdentity.objects.exists()
    assert ProvisioningEvent.objects.get(kind=EventKind.REJECTED).reason_code in {"bad_signature", "decryption_failed"}
