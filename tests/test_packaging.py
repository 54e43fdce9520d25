"""The distributions: the sdist and the wheel built from it carry the whole app and pass ``twine check``.

``python -m build`` builds the sdist, then the wheel from the unpacked sdist,
so a file the sdist forgets is missing from the wheel too. Built without
isolation (the build backend comes from requirements-dev.txt), so no
network is needed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Run-time state, caches and build output of the checkout (keys among them): never copied to build.
_NOT_COPIED = (".git", ".venv*", ".tox", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".keys", "var")
_NOT_COPIED += (".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "artifacts", "node_modules")


def _tools_missing() -> str | None:
    for module in ("build", "twine", "setuptools"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -r requirements-dev.txt)"
    if int(version("setuptools").split(".")[0]) < 77:
        return "setuptools < 77 cannot build the SPDX licence metadata (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    if missing := _tools_missing():
        pytest.skip(missing)
    # Build from a copy: setuptools writes build/ and *.egg-info into the source tree, and CI
    # runs two suites side by side on one checkout.
    source = tmp_path_factory.mktemp("source") / "saml_jit"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


def _app_files() -> set[str]:
    """Every file of the app in the checkout (compiled bytecode aside)."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "saml_jit").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_carries_every_file_of_the_app(dist):
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert _app_files() - names == set()
    assert {"saml_jit/py.typed", "saml_jit/migrations/0001_initial.py", "saml_jit/templates/saml_jit/error.html"} <= (
        names
    )
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_the_sdist_ships_no_tests_demo_or_benchmarks(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "docs/idps/entra-id.md"} <= names
    assert not {name for name in names if name.split("/")[0] in {"tests", "demo_project", "bench", ".ci"}}


def test_twine_check_passes(dist):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_licence_is_the_apache_2_text_the_metadata_names():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_no_made_up_project_url():
    urls = PYPROJECT["project"].get("urls", {})
    assert not [url for url in urls.values() if ".invalid" in url or "example." in url]


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            names.add(line.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower())
    return names


def test_the_demo_requirements_install_no_test_or_lint_tools():
    runtime = _requirement_names(ROOT / "requirements.txt")
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    tools = {"pytest", "pytest-django", "hypothesis", "gunicorn", "scim2-tester", "playwright", "ruff", "mypy", "tox"}
    assert runtime & tools == set()
    assert "-r requirements.txt" in dev
    assert tools <= _requirement_names(ROOT / "requirements-dev.txt")


def test_the_extras_list_the_development_requirements():
    extras = PYPROJECT["project"]["optional-dependencies"]
    listed = {
        requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip().lower()
        for name in ("scim", "demo", "test", "lint", "release")
        for requirement in extras[name]
    }
    wanted = (_requirement_names(ROOT / "requirements.txt") | _requirement_names(ROOT / "requirements-dev.txt")) - {
        "django",
        "djangosaml2",
        "pysaml2",
        "xmlsec",
        "lxml",
        "cryptography",
        "django-environ",
        "tox",
    }
    assert wanted - listed == set()


def test_the_four_required_dependencies_are_runtime_dependencies():
    names = {
        requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].strip().lower()
        for requirement in PYPROJECT["project"]["dependencies"]
    }
    assert {"django", "djangosaml2", "pysaml2", "django-environ"} <= names
