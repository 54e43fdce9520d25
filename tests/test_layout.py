"""The package's shape, held as tests: small functions, one settings object, layers that stay apart.

The import-linter contracts in ``pyproject.toml`` (run by ``tox -e lint`` and
``.ci/run``) hold the layering between saml_jit's own modules; import-linter
can only forbid whole external packages, so the part about ``django.db`` and
``django.http`` is checked here, on the source.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "saml_jit"
MAX_FUNCTION_LINES = 40

#: Pure modules: plain data in, plain data out.
PURE = (
    "mapping.py",
    "planning.py",
    "groups.py",
    "lifecycle.py",
    "review/rules.py",
    "messages.py",
    "exceptions.py",
    "saml/data.py",
)
#: The SAML/XML layer: no ORM, no policy.
PROTOCOL = "saml"


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_function_is_longer_than_forty_lines():
    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_no_orm_and_no_http(name):
    forbidden = {m for m in imported_modules(PACKAGE / name) if m.startswith(("django.db", "django.http"))}
    assert forbidden == set()


def test_protocol_layer_imports_no_orm():
    found = {
        (str(path.relative_to(PACKAGE)), module)
        for path in (PACKAGE / PROTOCOL).rglob("*.py")
        for module in imported_modules(path)
        if module.startswith("django.db")
    }
    assert found == set()


READS = ("settings.SAML_JIT", 'getattr(settings, "SAML_JIT"', "._global(")


def test_only_the_settings_object_reads_saml_jit_settings():
    readers = [
        str(path.relative_to(PACKAGE))
        for path in sources()
        if path.name != "conf.py" and any(read in path.read_text() for read in READS)
    ]
    assert readers == []
