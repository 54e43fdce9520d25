"""SCIM filters as Django ``Q`` objects.

scim2-models parses and validates the filter (RFC 7644 §3.4.2.2, Entra's
``emails[type eq "work"].value eq "…"`` included) into a tree; this module
only walks that tree with the library's :class:`FilterVisitor`, so the
database does the filtering, the scoping and the paging together.

Each resource maps ``(attribute, sub-attribute)`` (lower case) to a
:class:`Column` (a model field), a :class:`Constant` (a value every stored
resource has, such as the ``work`` type of the one email kept) or a callable
building the ``Q`` itself. An attribute without a mapping is an
``invalidFilter`` error rather than a silent "matches nothing".
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Union

from django.db.models import Q
from scim2_models import InvalidFilterException
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from scim2_models.path.filter import ScimFilter
from scim2_models.path.visitor import FilterVisitor

NOTHING = Q(pk__in=[])
EVERYTHING = Q()

STRING_LOOKUPS = {
    CompareOperator.eq: "exact",
    CompareOperator.co: "contains",
    CompareOperator.sw: "startswith",
    CompareOperator.ew: "endswith",
    CompareOperator.gt: "gt",
    CompareOperator.ge: "gte",
    CompareOperator.lt: "lt",
    CompareOperator.le: "lte",
}
CASE_INSENSITIVE = {"exact": "iexact", "contains": "icontains", "startswith": "istartswith", "endswith": "iendswith"}


@dataclass(frozen=True)
class Column:
    """A model field. ``kind`` is "string", "boolean" or "id"."""

    lookup: str
    kind: str = "string"
    case_exact: bool = False


@dataclass(frozen=True)
class Constant:
    """A value every stored resource has."""

    value: Any


Target = Union[Column, Constant, Callable[[CompareOperator, Any], Q]]  # noqa: UP007 - evaluated at run time on 3.10


class QueryBuilder(FilterVisitor[Q]):
    def __init__(self, columns: Mapping[tuple[str, str | None], Target], prefix: str | None = None) -> None:
        self.columns = columns
        self.prefix = prefix

    def _target(self, path: AttrPath) -> Target:
        attr, sub = path.attr.lower(), path.sub_attr.lower() if path.sub_attr else None
        key = (self.prefix, attr) if self.prefix and sub is None else (attr, sub)
        target = self.columns.get(key)
        if target is None:
            raise InvalidFilterException(detail=f"Filtering on {path} is not supported.")
        return target

    def visit_comparison(self, node: Comparison) -> Q:
        target = self._target(node.attr_path)
        if isinstance(target, Constant):
            return EVERYTHING if _compare_constant(target.value, node.op, node.value) else NOTHING
        if isinstance(target, Column):
            return compare_column(target, node.op, node.value)
        return target(node.op, node.value)

    def visit_present(self, node: Present) -> Q:
        target = self._target(node.attr_path)
        if isinstance(target, Constant):
            return EVERYTHING if target.value not in (None, "") else NOTHING
        if isinstance(target, Column):
            present = Q(**{f"{target.lookup}__isnull": False})
            return present & ~Q(**{target.lookup: ""}) if target.kind == "string" else present
        return target(CompareOperator.ne, None)

    def visit_not(self, node: Not) -> Q:
        return ~self.visit(node.expr)

    def visit_logical_expr(self, node: LogicalExpr) -> Q:
        combine = operator.and_ if node.op == LogicalOperator.and_ else operator.or_
        return functools.reduce(combine, (self.visit(term) for term in node.terms))

    def visit_value_path(self, node: ValuePath) -> Q:
        # One stored value per multi-valued attribute (or a callable that
        # handles the sub-filter itself), so the selection filters it directly.
        return QueryBuilder(self.columns, prefix=node.attr_path.attr.lower()).visit(node.val_filter)


def _compare_constant(actual: Any, op: CompareOperator, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == CompareOperator.eq:
        return actual == expected
    if op == CompareOperator.ne:
        return actual != expected
    if not (isinstance(actual, str) and isinstance(expected, str)):
        return False
    return {
        CompareOperator.co: expected in actual,
        CompareOperator.sw: actual.startswith(expected),
        CompareOperator.ew: actual.endswith(expected),
        CompareOperator.gt: actual > expected,
        CompareOperator.ge: actual >= expected,
        CompareOperator.lt: actual < expected,
        CompareOperator.le: actual <= expected,
    }[op]


def compare_column(column: Column, op: CompareOperator, value: Any) -> Q:
    """The ``Q`` comparing ``column`` with ``value`` (``eq`` and ``ne`` only for booleans, ids and null)."""
    if value is None:
        missing = Q(**{f"{column.lookup}__isnull": True})
        if column.kind == "string":
            missing |= Q(**{column.lookup: ""})
        if op == CompareOperator.eq:
            return missing
        if op == CompareOperator.ne:
            return ~missing
        raise InvalidFilterException(detail="Only eq and ne compare with null.")
    if column.kind in ("boolean", "id"):
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise InvalidFilterException(detail=f"{op.value} does not apply to this attribute.")
        if column.kind == "boolean" and not isinstance(value, bool):
            raise InvalidFilterException(detail="This attribute compares with true or false.")
        q = Q(**{column.lookup: value if column.kind == "boolean" else str(value)})
        return q if op == CompareOperator.eq else ~q
    if not isinstance(value, str):
        raise InvalidFilterException(detail="This attribute compares with a string.")
    if op == CompareOperator.ne:
        return ~compare_column(column, CompareOperator.eq, value)
    lookup = STRING_LOOKUPS[op]
    if not column.case_exact:
        lookup = CASE_INSENSITIVE.get(lookup, lookup)
    return Q(**{f"{column.lookup}__{lookup}": value})


def to_q(tree: Any, columns: Mapping[tuple[str, str | None], Target]) -> Q:
    """The ``Q`` for a parsed filter tree (``ScimFilter.ast``)."""
    return QueryBuilder(columns).visit(tree)


class _Qualifier(FilterVisitor[FilterNode]):
    """Gives an extension attribute named without its schema URN (``manager``) that URN."""

    def __init__(self, urn: str, names: frozenset[str]) -> None:
        self.urn = urn
        self.names = names

    def _path(self, path: AttrPath) -> AttrPath:
        if path.uri is None and path.attr.lower() in self.names:
            return replace(path, uri=self.urn)
        return path

    def visit_comparison(self, node: Comparison) -> FilterNode:
        return replace(node, attr_path=self._path(node.attr_path))

    def visit_present(self, node: Present) -> FilterNode:
        return replace(node, attr_path=self._path(node.attr_path))

    def visit_not(self, node: Not) -> FilterNode:
        return replace(node, expr=self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> FilterNode:
        return replace(node, terms=tuple(self.visit(term) for term in node.terms))

    def visit_value_path(self, node: ValuePath) -> FilterNode:
        # The inner filter names sub-attributes, which keep no URN.
        return replace(node, attr_path=self._path(node.attr_path))


def qualify(text: str, urn: str, names: frozenset[str]) -> str:
    """``text`` with the attributes in ``names`` (lower case) qualified by ``urn``.

    scim2-models resolves an attribute without a URN against the core schema
    only, but clients name extension attributes bare: Entra ID documents
    ``filter=id eq "…" and manager eq "…"``. A filter that does not parse is
    returned as it is, for the library to refuse.
    """
    try:
        tree = ScimFilter(text).ast
    except Exception:  # any parse failure is reported by the library's own validation, with its status
        return text
    return str(_Qualifier(urn, names).visit(tree))
