"""The member operations of a Group PATCH, applied in SQL: the cost follows the members changed.

The forms Entra ID and Okta send, and RFC 7644 §3.5.2's:

* add: ``{"op": "add", "path": "members", "value": [{"value": "<id>"}]}``;
* remove by value (Entra ID without ``aadOptscim062020``):
  ``{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "<id>"}]}``
  — matched on ``value`` alone, the member's id;
* remove by filter (Okta, Entra ID with the flag):
  ``{"op": "remove", "path": "members[value eq \\"<id>\\"]"}``;
* remove all: ``{"op": "remove", "path": "members"}``;
* replace all: ``{"op": "replace", "path": "members", "value": [...]}``;
* a path-less ``add`` or ``replace`` whose value holds ``members`` (beside
  ``displayName``, say).

Only users of the client's IdP are ever added or removed; a member an
administrator added by hand is never touched. A removal that matches no
member changes nothing and records nothing. Any other form touching members
(``members[…].value``, ``members.value``) makes :func:`plan` return None, and
the caller applies the PATCH to the whole resource instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from scim2_models import InvalidValueException, PatchOp
from scim2_models.path.expressions import AttrPath, FilterNode, ValuePath

from .common import parse_pk
from .filters import NOTHING, Constant, Target, to_q

if TYPE_CHECKING:
    from django.contrib.auth.models import Group

    from .groups import Groups
    from .users import Users

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ADD, REMOVE, REPLACE = "add", "remove", "replace"


@dataclass(frozen=True)
class MemberOperation:
    """``kind`` on members: the ``entries`` given (add, replace, remove by value), a ``selection``
    filter (remove by filter), or neither (remove all)."""

    kind: str
    entries: list[Any] | None = None
    selection: FilterNode | None = None


@dataclass
class Plan:
    operations: list[MemberOperation] = field(default_factory=list)
    #: The operations on other attributes, for the group without its members.
    others: list[Any] = field(default_factory=list)


def is_members(name: str) -> bool:
    name = name.lower()
    return name == "members" or name == f"{GROUP_URN.lower()}:members"


def plan(patch_op: PatchOp[Any]) -> Plan | None:
    """The member operations and the other operations of a PATCH; None for a form handled whole."""
    result = Plan()
    for operation in patch_op.operations or []:
        if not _split(operation, result):
            return None
    return result


def _split(operation: Any, result: Plan) -> bool:
    kind = operation.op.value
    if operation.path is None:
        return _split_value(operation, kind, result)
    node = operation.path.ast
    if isinstance(node, AttrPath) and node.sub_attr is None and is_members(_name(node)):
        entries = None if kind == REMOVE and operation.value is None else _entries(operation.value)
        result.operations.append(MemberOperation(kind, entries))
        return True
    if isinstance(node, ValuePath) and is_members(_name(node.attr_path)):
        if kind != REMOVE or node.sub_attr is not None:
            return False
        result.operations.append(MemberOperation(kind, selection=node.val_filter))
        return True
    if isinstance(node, AttrPath) and is_members(_name(node)):
        return False  # members.value and the like
    result.others.append(operation)
    return True


def _split_value(operation: Any, kind: str, result: Plan) -> bool:
    value = operation.value
    if not isinstance(value, dict):
        result.others.append(operation)
        return True
    rest = {key: item for key, item in value.items() if not is_members(key)}
    for key, item in value.items():
        if is_members(key):
            result.operations.append(MemberOperation(kind, _entries(item)))
    if rest:
        result.others.append(operation.model_copy(update={"value": rest}))
    return True


def _name(path: AttrPath) -> str:
    return f"{path.uri}:{path.attr}" if path.uri else path.attr


def _entries(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# -- applying ----------------------------------------------------------------


def wanted(users: Users, entries: Iterable[Any]) -> set[Any]:
    """The pks the entries name; every one must be a user of the client's IdP (400 otherwise)."""
    ids = []
    for entry in entries:
        value = entry.get("value") if isinstance(entry, dict) else None
        if value in (None, ""):
            raise InvalidValueException(detail="A member needs a value: the id of a User.")
        if entry.get("type") and str(entry["type"]).lower() != "user":
            raise InvalidValueException(detail="Only users can be group members (no nested groups).")
        pk = parse_pk(users.model, value)
        if pk is None:
            raise InvalidValueException(detail=f"Unknown member {value}.")
        ids.append(pk)
    found = set(users.scoped().filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    missing = set(ids) - found
    if missing:
        raise InvalidValueException(detail=f"Unknown member(s): {', '.join(sorted(map(str, missing)))}.")
    return found


def apply(groups: Groups, group: Group, operations: Iterable[MemberOperation]) -> bool:
    """Apply the member operations in order; whether any member was added or removed."""
    changed = False
    for operation in operations:
        added, removed = _delta(groups.users, group, operation)
        changed = groups.change_members(group, added, removed) or changed
    return changed


def _delta(users: Users, group: Group, operation: MemberOperation) -> tuple[set[Any], set[Any]]:
    members = users.scoped().filter(groups=group)
    if operation.kind in (ADD, REPLACE):
        wanted_pks = wanted(users, operation.entries or [])
        if operation.kind == ADD:
            present = set(members.filter(pk__in=wanted_pks).values_list("pk", flat=True)) if wanted_pks else set()
            return wanted_pks - present, set()
        current = set(members.values_list("pk", flat=True))
        return wanted_pks - current, current - wanted_pks
    if operation.selection is not None:
        return set(), set(members.filter(to_q(operation.selection, _columns(users))).values_list("pk", flat=True))
    if operation.entries is None:
        return set(), set(members.values_list("pk", flat=True))
    ids = [parse_pk(users.model, entry.get("value")) for entry in operation.entries if isinstance(entry, dict)]
    ids = [pk for pk in ids if pk is not None]
    return set(), set(members.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()


def _columns(users: Users) -> dict[tuple[str, str | None], Target]:
    """What a ``members[…]`` filter may compare: the member's id, and its type (always User)."""

    def by_id(op: Any, value: Any) -> Q:
        pk = parse_pk(users.model, value)
        q = NOTHING if pk is None else Q(pk=pk)
        return ~q if op == "ne" else q

    return {("value", None): by_id, ("type", None): Constant("User")}
