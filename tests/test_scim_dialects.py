"""saml_jit.scim.dialects: Entra ID's forms rewritten before scim2-models reads them (pure, no database)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("scim2_server", reason="SCIM needs the scim extra (Python 3.11+)")

from saml_jit.scim.dialects import normalise

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def operations(body: bytes) -> list[dict]:
    return json.loads(body)["Operations"]


def patched(path: str, *ops: dict) -> list[dict]:
    return operations(normalise("PATCH", path, json.dumps({"schemas": [PATCH], "Operations": list(ops)}).encode()))


def test_member_removal_matches_on_value_alone():
    removal = {
        "op": "Remove",
        "path": "members",
        "value": [{"$ref": None, "value": "7"}, {"value": "8", "display": "b"}],
    }
    assert patched("/Groups/3", removal) == [
        {"op": "Remove", "path": "members", "value": [{"value": "7"}, {"value": "8"}]}
    ]


def test_member_additions_and_user_paths_are_left_alone():
    add = {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "7"}]}
    assert patched("/Groups/3", add) == [add]
    emails = {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "7"}]}
    assert patched("/Users/3", emails) == [emails]  # not a group


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        (
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "42"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": {"value": "42"}},
        ),
        (
            {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": ""},
            {"op": "remove", "path": f"{ENTERPRISE}:manager"},
        ),
        (
            {"op": "Remove", "path": f"{ENTERPRISE}:manager", "value": "42"},
            {"op": "remove", "path": f"{ENTERPRISE}:manager"},
        ),
        (
            {"op": "replace", "value": {f"{ENTERPRISE}:manager": "42"}},
            {"op": "replace", "value": {f"{ENTERPRISE}:manager": {"value": "42"}}},
        ),
        (
            {"op": "replace", "value": {ENTERPRISE: {"manager": "42"}}},
            {"op": "replace", "value": {ENTERPRISE: {"manager": {"value": "42"}}}},
        ),
    ],
)
def test_manager_as_a_string(operation, expected):
    assert patched("/Users/3", operation) == [expected]


def test_resource_manager_as_a_string():
    body = {"userName": "a", ENTERPRISE: {"manager": "42", "department": "R&D"}}
    assert json.loads(normalise("POST", "/Users", json.dumps(body).encode()))[ENTERPRISE] == {
        "manager": {"value": "42"},
        "department": "R&D",
    }


def test_filtered_keys_of_a_path_less_value_become_operations():
    value = {"displayName": "P", 'emails[type eq "work"].value': "p@example.org", "active": False}
    assert patched("/Users/3", {"op": "replace", "value": value}) == [
        {"op": "replace", "value": {"displayName": "P", "active": False}},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "p@example.org"},
    ]


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"Operations": "x"}'])
def test_anything_else_is_returned_as_it_is(body):
    assert normalise("PATCH", "/Groups/3", body) is body


def test_untouched_bodies_keep_their_bytes():
    body = json.dumps({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]})
    assert normalise("PATCH", "/Users/3", body.encode()) == body.encode()
    assert normalise("GET", "/Users", b"") == b""


def test_deeply_nested_bodies_are_left_to_the_library():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert normalise("POST", "/Users", deep) is deep
