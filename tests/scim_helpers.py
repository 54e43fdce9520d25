"""Shared helpers for the SCIM tests: an authenticated SCIM client and payloads."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.test.testcases import LiveServerThread

from saml_jit.scim import auth
from tests.federation import IDP_A, IDP_B

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
username_model_only = pytest.mark.skipif(EMAIL_KEYED, reason="needs a username field")

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
BASE = "/scim/v2"


def user_name(local: str = "alice") -> str:
    return f"{local}@example.org" if EMAIL_KEYED else local


def user_payload(local: str = "alice", external_id: str | None = "subject-alice-0001", **extra: Any) -> dict:
    payload: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": user_name(local),
        "name": {"givenName": local.capitalize(), "familyName": "Liddell"},
        "emails": [{"value": f"{local}@example.org", "type": "work", "primary": True}],
        "active": True,
    }
    if external_id is not None:
        payload["externalId"] = external_id
    payload.update(extra)
    return payload


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


@dataclass
class Scim:
    """A SCIM client of the test project, authenticated with a bearer token."""

    client: Client
    token: str
    record: Any

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict | None = None, token: str | None = None, **extra: Any):
        return self.client.get(BASE + path, params or {}, **self._headers(token), **extra)

    def send(self, method: str, path: str, body: Any, token: str | None = None, **extra: Any):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        call = getattr(self.client, method)
        return call(BASE + path, data, content_type="application/scim+json", **self._headers(token), **extra)

    def post(self, path: str, body: Any, **kwargs: Any):
        return self.send("post", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any):
        return self.send("put", path, body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any):
        return self.send("patch", path, body, **kwargs)

    def delete(self, path: str, token: str | None = None, **extra: Any):
        return self.client.delete(BASE + path, **self._headers(token), **extra)

    def create_user(self, local: str = "alice", external_id: str = "subject-alice-0001", **extra: Any) -> dict:
        response = self.post("/Users", user_payload(local, external_id, **extra))
        assert response.status_code == 201, response.content
        return response.json()

    def create_group(self, name: str = "engineering", members: tuple[str, ...] = (), **extra: Any) -> dict:
        body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members], **extra}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.content
        return response.json()


def make_scim(name: str = "okta", idp: str = IDP_A.entity_id) -> Scim:
    record, token = auth.create_client(name, idp)
    return Scim(Client(), token, record)


@pytest.fixture(autouse=True)
def _clear_cache():
    # The refusal rate limit lives in the cache.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def scim(db) -> Scim:
    return make_scim()


@pytest.fixture
def scim_b(db) -> Scim:
    return make_scim("entra", IDP_B.entity_id)


def assert_error(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert str(body["status"]) == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


# --------------------------------------------------------------------------
# Replaying documented request sequences against a live server

FIXTURES = Path(__file__).parent / "fixtures" / "scim"
PLACEHOLDER = re.compile(r"{{(\w+)}}")


@pytest.fixture
def scim_server():
    """A live server of the test project (pytest-django's needs STATIC_URL, which the project does not set)."""
    connections_override = {
        conn.alias: conn for conn in connections.all() if conn.vendor == "sqlite" and conn.is_in_memory_db()
    }
    thread = LiveServerThread("127.0.0.1", lambda handler: handler, connections_override=connections_override)
    thread.daemon = True
    for conn in connections_override.values():
        conn.inc_thread_sharing()
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    try:
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.terminate()
        for conn in connections_override.values():
            conn.dec_thread_sharing()


def fill(value: Any, variables: dict[str, Any]) -> Any:
    """``value`` with its ``{{name}}`` placeholders replaced (a whole-string placeholder keeps the type)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return variables[whole.group(1)]
        return PLACEHOLDER.sub(lambda match: str(variables[match.group(1)]), value)
    if isinstance(value, list):
        return [fill(item, variables) for item in value]
    if isinstance(value, dict):
        return {fill(key, variables): fill(item, variables) for key, item in value.items()}
    return value


def contains(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` holds everything ``expected`` says (dicts compared key by key, the rest by value)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(contains(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, str) and not isinstance(actual, str) and actual is not None:
        return expected == str(actual)
    return bool(expected == actual)


def dig(body: Any, pointer: str) -> Any:
    for part in pointer.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


@dataclass
class Replay:
    """Sends documented requests (``tests/fixtures/scim/<client>/<step>.json``) to a live server.

    Each fixture names its source and step, the request (method, path,
    query, headers, body with ``{{placeholders}}``), the status and a subset
    of the body expected, and the values to capture for later steps.
    """

    base_url: str
    token: str
    client: str
    variables: dict[str, Any] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)

    def step(self, name: str, status: int | None = None, **variables: Any) -> Any:
        import httpx2

        fixture = json.loads((FIXTURES / self.client / f"{name}.json").read_text())
        self.variables.update(variables)
        request = fill(fixture["request"], self.variables)
        expect = fill(fixture["expect"], self.variables)
        headers = {"Authorization": f"Bearer {self.token}", **request.get("headers", {})}
        body = request.get("body")
        response = httpx2.request(
            request["method"],
            f"{self.base_url}/scim/v2{request['path']}",
            params=request.get("query"),
            headers=headers,
            content=None if body is None else json.dumps(body).encode(),
            timeout=30,
        )
        self.sent.append(name)
        wanted = expect["status"] if status is None else status
        assert response.status_code == wanted, (self.client, name, response.status_code, response.text)
        payload = response.json() if response.content else None
        if status is not None:  # the caller expects another outcome than the documented one
            return payload
        if "body" in expect:
            assert contains(expect["body"], payload), (self.client, name, expect["body"], payload)
        for variable, pointer in fixture.get("capture", {}).items():
            self.variables[variable] = dig(payload, pointer)
        return payload
