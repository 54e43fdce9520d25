"""What Entra ID sends that scim2-models would read otherwise, rewritten before it does.

Most of the two clients' dialects are accepted by scim2-models as they are
(capitalised ``op`` values, ``"False"`` strings, path-less values, filtered
paths); the policy in :mod:`.resources` turns on the rest. Three forms are not
what they look like to the library, and are rewritten here, on the decoded
body:

* **Group member removal by value** (Entra ID's tutorial form):
  ``{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "<id>"}]}``.
  The library reads every key of an entry as a condition, and no member of a
  group has a null ``$ref``: the removal matched nothing and answered 2xx,
  so the person kept the group's access. Only ``value`` — the member's id —
  selects what to remove.
* **Filtered paths as keys of a path-less value** (Entra ID with
  ``aadOptscim062020``): ``{"op": "replace", "value": {"emails[type eq
  \"work\"].value": "…"}}``. The library drops such keys (the email was
  claimed changed and was not); each becomes an operation with that path.
* **The enterprise ``manager`` as a string** (Entra ID's default):
  ``"urn:…:enterprise:2.0:User": {"manager": "<id>"}``, or a PATCH value of
  ``"<id>"`` for the path ``urn:…:enterprise:2.0:User:manager``. RFC 7643
  §4.3 makes it complex (``{"value": "<id>"}``), which is what the library
  validates. A removal carrying the manager's id removes the manager.
"""

from __future__ import annotations

import json
from typing import Any

from .resources import ENTERPRISE

MANAGER = f"{ENTERPRISE}:manager".lower()


def normalise(method: str, path: str, body: bytes) -> bytes:
    """The request body with Entra ID's forms rewritten (unchanged when nothing applies)."""
    if method.upper() not in ("POST", "PUT", "PATCH") or not body:
        return body
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return body  # the library answers invalidSyntax (deep nesting included)
    if not isinstance(payload, dict):
        return body
    endpoint = path.strip("/").split("/")[0].lower()
    patching = method.upper() == "PATCH"
    changed = _patch(payload, endpoint) if patching else endpoint == "users" and _resource(payload)
    return json.dumps(payload).encode() if changed else body


def _patch(payload: dict[str, Any], endpoint: str) -> bool:
    key = next((key for key in payload if key.lower() == "operations"), None)
    operations = payload.get(key) if key else None
    if not isinstance(operations, list):
        return False
    rewritten: list[Any] = []
    for operation in operations:
        if isinstance(operation, dict):
            rewritten.extend(_split_filtered_keys(operation))
    changed = len(rewritten) != len(operations)
    for operation in rewritten:
        changed = _operation(operation, endpoint) or changed
    payload[str(key)] = rewritten if changed else operations
    return changed


def _split_filtered_keys(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """A path-less value's keys that hold a filter (``emails[type eq "work"].value``), as operations of their own.

    Entra ID sends them with ``aadOptscim062020``; scim2-models takes only
    plain attribute paths as keys and would drop these (a change claimed, not
    made).
    """
    value = operation.get("value")
    if operation.get("path") is not None or not isinstance(value, dict):
        return [operation]
    filtered = {key: item for key, item in value.items() if "[" in key}
    if not filtered:
        return [operation]
    rest = {key: item for key, item in value.items() if key not in filtered}
    split = [{**operation, "path": key, "value": item} for key, item in filtered.items()]
    return ([{**operation, "value": rest}] if rest else []) + split


def _operation(operation: dict[str, Any], endpoint: str) -> bool:
    kind = str(operation.get("op", "")).lower()
    path = operation.get("path")
    value = operation.get("value")
    if endpoint == "groups" and kind == "remove" and isinstance(path, str) and path.lower() == "members":
        return _member_values(value)
    if endpoint != "users":
        return False
    if isinstance(path, str) and path.lower() == MANAGER:
        return _manager_operation(operation, kind, value)
    if path is None and isinstance(value, dict):
        return _manager_key(value) | _resource(value)
    return False


def _member_values(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    changed = False
    for entry in value:
        if isinstance(entry, dict) and "value" in entry and len(entry) > 1:
            for key in [key for key in entry if key != "value"]:
                del entry[key]
            changed = True
    return changed


def _manager_operation(operation: dict[str, Any], kind: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if kind == "remove" or not value:
        operation["op"] = "remove"
        del operation["value"]
    else:
        operation["value"] = {"value": value}
    return True


def _manager_key(value: dict[str, Any]) -> bool:
    for key, item in list(value.items()):
        if key.lower() == MANAGER and isinstance(item, str):
            value[key] = {"value": item} if item else None
            return True
    return False


def _resource(payload: dict[str, Any]) -> bool:
    extension = next((item for key, item in payload.items() if key.lower() == ENTERPRISE.lower()), None)
    if not isinstance(extension, dict):
        return False
    for key, item in list(extension.items()):
        if key.lower() == "manager" and isinstance(item, str):
            extension[key] = {"value": item} if item else None
            return True
    return False
