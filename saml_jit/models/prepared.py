"""Reads compiled once: a hot query's SQL kept per connection, run again with each call's values.

Django compiles a queryset to SQL every time it runs. For a login's identity
read — three tables through ``select_related``, some forty columns — the
compilation costs about half a millisecond of CPU, ten times what the
database takes to answer. A :class:`PreparedRead` compiles its queryset once
per database connection, with placeholder values, and afterwards sends the
same SQL with the values of each call; Django's own ``ModelIterable`` turns
the rows into model instances (and the related instances ``select_related``
brought along), handed a compiler that answers with the SQL kept instead of
compiling it again.

Only values may differ between calls, never the shape of the query: the
placeholders must come out of the compiler as query parameters, unchanged.
A queryset whose parameters do not show every placeholder (a field that
transforms what it is given, a backend that inlines values) is not prepared;
it runs through the ORM on every call, which is always right, only slower.
Each thread keeps its own compilations (Django's connections are
per-thread), so nothing compiled against one connection is used on another.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError

__all__ = ["PreparedRead"]


class PreparedRead:
    """A read whose SQL is compiled once per connection; ``build(**values)`` gives its queryset.

    ``build`` must return a queryset of model instances (no ``values()``, no
    annotations, no ``prefetch_related``) that depends on its keyword
    arguments only through filter values, and on nothing else; :meth:`fetch`
    runs it with string values and returns the instances, as
    ``list(build(**values))`` would.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], *names: str) -> None:
        self._build = build
        self._names = names
        self._compiled: WeakKeyDictionary[Any, _Compiled | None] = WeakKeyDictionary()

    def fetch(self, using: str, **values: str) -> list[Any]:
        """The instances the query finds for ``values`` on database ``using``."""
        connection = connections[using]
        compiled = self._compiled.get(connection, _UNCOMPILED)
        if compiled is _UNCOMPILED:
            compiled = self._compile(using, connection)
        if compiled is None:  # not preparable: the ORM, every time
            return list(self._build(**values).using(using))
        assert isinstance(compiled, _Compiled)
        return compiled.run(connection, values)

    def _compile(self, using: str, connection: Any) -> _Compiled | None:
        """Compile for ``connection`` and keep it (None: not preparable), unless the query is empty."""
        # Mixed case: a value upper- or lower-cased on its way into the query is not found, so not prepared.
        placeholders = {f"saml-jit-Prepared-{secrets.token_hex(16)}": name for name in self._names}
        queryset = self._build(**{name: value for value, name in placeholders.items()}).using(using)
        if queryset.query.is_empty():  # ``none()``: no SQL to keep, this time
            return None
        compiled = self._compiled[connection] = _Compiled.of(queryset, placeholders, connection)
        return compiled


_UNCOMPILED = object()


class _Compiled:
    """One queryset's compilation on one connection, and the compiler that answers with it."""

    def __init__(self, queryset: QuerySet[Any], compiler: Any, params: tuple[Any, ...]) -> None:
        self.queryset = queryset
        self.compiler = compiler
        #: For each query parameter: (the name of the value it takes, or None; the constant it is otherwise).
        self.params = params
        self.locks = bool(queryset.query.select_for_update) and compiler.connection.features.has_select_for_update

    @classmethod
    def of(cls, queryset: QuerySet[Any], placeholders: dict[str, str], connection: Any) -> _Compiled | None:
        """Compile ``queryset``; None when its parameters do not carry each placeholder once, unchanged."""
        query = queryset.query
        if queryset._prefetch_related_lookups or queryset._known_related_objects or query.annotation_select:  # type: ignore[attr-defined]
            return None
        if query.extra_select or queryset._iterable_class is not ModelIterable:  # type: ignore[attr-defined]
            return None
        backend_compiler = connection.ops.compiler(query.compiler)  # the backend's SQLCompiler
        compiler = _compiler_class(backend_compiler)(query, connection, queryset.db)
        sql, params = backend_compiler.as_sql(compiler)  # also sets the compiler's select, klass_info, annotations
        slots = [placeholders.get(param) if isinstance(param, str) else None for param in params]
        if sorted(slot for slot in slots if slot is not None) != sorted(placeholders.values()):
            return None  # a placeholder was transformed, inlined or repeated
        compiler.sql = sql
        prepared = cls(queryset, compiler, tuple(zip(slots, params, strict=True)))
        query.get_compiler = lambda *args, **kwargs: compiler  # type: ignore[method-assign]
        return prepared

    def run(self, connection: Any, values: dict[str, str]) -> list[Any]:
        if self.locks and connection.get_autocommit() and connection.features.supports_transactions:
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        self.compiler.params = tuple(constant if slot is None else values[slot] for slot, constant in self.params)
        # Django's own iterable builds the instances (and the related ones), with this compiler's SQL.
        instances: Any = self.queryset._iterable_class(self.queryset)  # type: ignore[attr-defined]
        return list(instances)


class _Prepared:
    """Mixed into the backend's compiler: ``as_sql`` answers with the SQL compiled once and this run's parameters."""

    sql = ""
    params: tuple[Any, ...] = ()

    def as_sql(self, *args: Any, **kwargs: Any) -> tuple[str, tuple[Any, ...]]:
        return self.sql, self.params


@functools.cache
def _compiler_class(backend_compiler: type[SQLCompiler]) -> type[Any]:
    return type(f"Prepared{backend_compiler.__name__}", (_Prepared, backend_compiler), {})
