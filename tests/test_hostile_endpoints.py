"""No 500 for hostile input, at any endpoint saml_jit serves.

Every endpoint — ``login/``, ``acs/``, ``logout/``, ``ls/``, ``ls/post/``,
``metadata/`` and SCIM (with and without a valid token) — gets the same
garbage: empty, not base64, not UTF-8, NUL bytes, ``<a/>``, a DTD, an entity
expansion, DEFLATE of those, and a value larger than any limit, as query
parameters, form fields and raw bodies. The test client re-raises any
exception a view lets escape, so a crash fails the test with its traceback;
otherwise the status must be below 500.
"""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.scim_helpers import BASE, _clear_cache, make_scim  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

User = get_user_model()
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"

DOCUMENTS = {
    "a": b"<a/>",
    "nul": b"<a>\x00</a>",
    "non-utf8": b"<a>\xff\xfe</a>",
    "dtd": b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>',
    "laughs": b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>',
    "logout-request-shell": f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}"/>'.encode(),
    "logout-response-shell": f'<samlp:LogoutResponse xmlns:samlp="{SAMLP}" InResponseTo="x"/>'.encode(),
    "response-shell": f'<samlp:Response xmlns:samlp="{SAMLP}" ID="_1" Version="2.0"/>'.encode(),
}


def _deflated(data: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(data) + compressor.flush()).decode()


VALUES = {
    "empty": "",
    "not-base64": "%%% not base64 !!",
    "huge": "A" * (600 * 1024),
    "nul-char": "a\x00b",
    **{f"b64-{name}": base64.b64encode(doc).decode() for name, doc in DOCUMENTS.items()},
    **{f"deflated-{name}": _deflated(doc) for name, doc in DOCUMENTS.items()},
}

RAW_BODIES = {
    "non-utf8-form": (b"SAMLResponse=%FF%FE%00&SAMLRequest=%FF&RelayState=%C0%AF", "application/x-www-form-urlencoded"),
    "binary": (b"\xff\xfe\x00\x01<a/>", "application/octet-stream"),
    "xml": (b"<a/>", "text/xml"),
}

RAW_QUERIES = ["SAMLRequest=%FF%FE%00", "SAMLResponse=%00&SAMLRequest=%00", "idp=%00&next=%FF", "RelayState=%C0%AF"]

#: The parameters each SAML endpoint reads.
SAML_ENDPOINTS = {
    "/saml2/login/": ("idp", "next", "RelayState", "scoping"),
    "/saml2/acs/": ("SAMLResponse", "RelayState"),
    "/saml2/logout/": ("SAMLRequest", "next"),
    "/saml2/ls/": ("SAMLRequest", "SAMLResponse", "RelayState"),
    "/saml2/ls/post/": ("SAMLRequest", "SAMLResponse", "RelayState"),
    "/saml2/metadata/": ("SAMLRequest",),
}


def assert_no_server_error(response) -> None:
    # 501 is SCIM's deliberate "Bulk is not supported", not a failure.
    assert response.status_code < 500 or response.status_code == 501, (response.status_code, response.content[:1000])


@pytest.fixture(params=["anonymous", "signed-in"])
def any_client(request) -> Client:
    client = Client()
    if request.param == "signed-in":  # a local sign-in: logout/ then does its work
        client.force_login(User.objects.create_user(**{User.USERNAME_FIELD: "local@example.org"}))
    return client


@pytest.mark.parametrize("path", sorted(SAML_ENDPOINTS))
@pytest.mark.parametrize("value", sorted(VALUES))
def test_saml_endpoints_survive_hostile_parameters(any_client, path, value):
    params = dict.fromkeys(SAML_ENDPOINTS[path], VALUES[value])
    for name in SAML_ENDPOINTS[path]:  # each alone (the messages want exactly one), then all at once
        assert_no_server_error(any_client.get(path, {name: VALUES[value]}))
        assert_no_server_error(any_client.post(path, {name: VALUES[value]}))
    assert_no_server_error(any_client.post(path, params))


@pytest.mark.parametrize("path", sorted(SAML_ENDPOINTS))
def test_saml_endpoints_survive_raw_bodies_and_queries(any_client, path):
    for body, content_type in RAW_BODIES.values():
        assert_no_server_error(any_client.post(path, body, content_type=content_type))
    for query in RAW_QUERIES:
        assert_no_server_error(any_client.get(f"{path}?{query}"))
        assert_no_server_error(any_client.post(f"{path}?{query}", {}))


# -- SCIM --------------------------------------------------------------------------

SCIM_BODIES = {
    "empty": b"",
    "non-utf8": b"\xff\xfe\x00",
    "truncated": b'{"schemas": [',
    "array": b"[]",
    "null": b"null",
    "wrong-types": json.dumps({"schemas": 5, "userName": ["x"], "active": "maybe", "emails": "x"}).encode(),
    "nul": json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a\x00b"}).encode(),
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "huge": json.dumps({"userName": "a" * (2 * 1024 * 1024)}).encode(),
    "patch-garbage": json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "\x00", "path": "((", "value": None}],
        }
    ).encode(),
}
SCIM_PATHS = [
    "/Users",
    "/Users/%00",
    "/Users/../../etc",
    "/Users/" + "9" * 40,
    "/Groups",
    "/Groups/%FF",
    "/Bulk",
    "/%00",
]
SCIM_QUERIES = [
    'filter=userName eq "a\x00"',
    "filter=((((((((((",
    "filter=" + "a" * 20_000,
    "startIndex=-1&count=abc",
    "count=99999999999999999999999",
    "attributes=%FF&excludedAttributes=%00",
]


@pytest.fixture(params=["no-token", "valid-token"])
def scim_headers(request) -> dict[str, str]:
    if request.param == "no-token":
        return {"HTTP_AUTHORIZATION": "Bearer \x00garbage"}
    return {"HTTP_AUTHORIZATION": f"Bearer {make_scim().token}"}


@pytest.mark.parametrize("body", sorted(SCIM_BODIES))
def test_scim_survives_hostile_bodies(client, scim_headers, body):
    for path in SCIM_PATHS:
        for method in ("post", "put", "patch"):
            call = getattr(client, method)
            response = call(BASE + path, SCIM_BODIES[body], content_type="application/scim+json", **scim_headers)
            assert_no_server_error(response)


def test_scim_survives_hostile_queries_and_paths(client, scim_headers):
    for path in SCIM_PATHS:
        assert_no_server_error(client.get(BASE + path, **scim_headers))
        assert_no_server_error(client.delete(BASE + path, **scim_headers))
        for query in SCIM_QUERIES:
            assert_no_server_error(client.get(f"{BASE}{path}?{query}", **scim_headers))
