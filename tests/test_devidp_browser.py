"""The development IdP in a real browser: the demo, and a project made the way the README says.

Playwright drives Debian's chromium (``/usr/bin/chromium``; never
``playwright install``) against ``runserver`` over plain http on a random
port, as a developer would run it:

* the demo (``demo_setup`` + ``runserver`` in a temporary ``DEMO_VAR_DIR``):
  each demo person signs in through the development IdP's pages and signs out
  through single logout; alice (staff) reviews events in the admin; dave is
  denied and sees the refusal page;
* a project fresh from ``django-admin startproject``, changed only by the
  README Quickstart's blocks (``<!-- quickstart:... -->``; ``SITE_URL`` gets the
  random port), reaches an SP-initiated login through the development IdP.

Skips, saying why, without playwright or chromium. Screenshots go to
``tests/artifacts/devidp/`` (git-ignored; CI keeps them).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "devidp"
README = ROOT / "README.md"
#: Demo person -> the username saml_jit gives them (the email's local part, lower-cased).
DEMO_PEOPLE = {"alice": "alice", "bob": "bob", "carol": "carol.nunez"}

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without the test settings (manage.py picks its own), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL"}}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", **extra}


def _manage(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def _runserver(cwd: Path, env: dict[str, str], port: int) -> Iterator[str]:
    log = (ARTIFACTS / f"runserver-{port}.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"localhost:{port}", "--noreload"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    try:
        _wait_until_up(url, server)
        yield url
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as a developer stops it (atexit handlers run)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"runserver exited; see {ARTIFACTS}"
        try:
            urllib.request.urlopen(f"{url}/saml2/metadata/", timeout=5).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"runserver did not answer at {url}")


@contextmanager
def _page(name: str) -> Iterator:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            yield page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# ----------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    var, port = tmp_path_factory.mktemp("demo-var"), _free_port()
    env = _environment(DEMO_VAR_DIR=str(var), DEMO_BASE_URL=f"http://localhost:{port}", DEBUG="true")
    out = _manage(ROOT, env, "demo_setup")
    password = re.search(r"password: (\S+)", out).group(1)
    assert password
    with _runserver(ROOT, env, port) as url:
        yield url, var / "db.sqlite3"


def _demo_login(page, url: str, key: str) -> None:
    page.goto(f"{url}/")
    page.click("text=Log in with SAML")
    page.wait_for_url("**/devidp/sso/**")
    _shot(page, f"demo-{key}-1-idp")
    page.click(f"button[name=person][value={key}]")


@pytest.mark.parametrize("key", list(DEMO_PEOPLE))
def test_demo_login_and_logout_as_each_person(demo, key):
    url, _db = demo
    with _page(f"demo-{key}") as page:
        _demo_login(page, url, key)
        page.wait_for_url(f"{url}/")
        assert page.locator("table td").first.inner_text() == DEMO_PEOPLE[key]
        _shot(page, f"demo-{key}-2-home")
        page.click("text=Log out")
        page.wait_for_url(f"{url}/")
        page.wait_for_selector("text=You are not signed in")
        _shot(page, f"demo-{key}-3-signed-out")


def test_demo_staff_person_reviews_events_in_the_admin(demo):
    url, _db = demo
    with _page("demo-admin") as page:
        _demo_login(page, url, "alice")
        page.wait_for_url(f"{url}/")
        page.goto(f"{url}/admin/saml_jit/provisioningevent/")
        assert "Select provisioning event" in page.content() or page.locator("#result_list").count() == 1
        assert page.locator("#result_list tbody tr").count() >= 1
        _shot(page, "demo-alice-admin-events")
        page.locator("#result_list tbody tr th a").first.click()
        page.wait_for_url("**/provisioningevent/*/change/")
        _shot(page, "demo-alice-admin-event")


def test_demo_denied_person_sees_the_refusal(demo):
    url, db = demo
    with _page("demo-dave") as page:
        _demo_login(page, url, "dave")
        page.wait_for_url("**/saml2/acs/")
        assert page.locator("h1").inner_text() == "Sign-in failed"
        assert "email domain cannot sign in" in page.content()
        _shot(page, "demo-dave-denied")
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT reason_code FROM saml_jit_provisioningevent WHERE kind = 'denied' AND subject LIKE 'd4ve%'"
        ).fetchall()
        users = connection.execute("SELECT count(*) FROM auth_user WHERE email = 'dave@partner.example'").fetchone()
    assert rows == [("email_domain_not_allowed",)]
    assert users == (0,)


# ----------------------------------------------------------------------------- a new project, by the README


def quickstart_block(name: str) -> str:
    """The README Quickstart's code block marked ``<!-- quickstart:name -->``, unindented."""
    match = re.search(rf"<!-- quickstart:{name} -->\n\s*```\w+\n(.*?)\n\s*```", README.read_text(), re.S)
    assert match, f"README has no quickstart:{name} block"
    lines = match.group(1).split("\n")
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def _new_project(folder: Path, port: int) -> Path:
    """``django-admin startproject mysite`` changed by the README's blocks; SITE_URL on ``port``."""
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite"], cwd=folder, env=_environment(), check=True
    )
    project = folder / "mysite"
    settings = quickstart_block("settings")
    assert 'SITE_URL = "http://localhost:8000"' in settings
    settings = settings.replace("http://localhost:8000", f"http://localhost:{port}")
    with (project / "mysite" / "settings.py").open("a") as handle:
        handle.write("\n" + settings)
    (project / "mysite" / "urls.py").write_text(quickstart_block("urls"))
    return project


def test_new_project_following_the_readme_signs_in_through_the_dev_idp(tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    project, env = _new_project(tmp_path, port), _environment()
    commands = [line.split() for line in quickstart_block("commands").splitlines() if line.strip()]
    assert commands[-1] == ["python", "manage.py", "runserver"]
    for command in commands[:-1]:
        assert command[:2] == ["python", "manage.py"]
        _manage(project, env, *command[2:])
    assert "no issues" in _manage(project, env, "check")
    with _runserver(project, env, port) as url, _page("new-project") as page:
        page.goto(f"{url}/devidp/")
        assert "The SP trusts this IdP" in page.content()
        _shot(page, "new-project-1-devidp")
        page.click("#devidp-login")
        page.wait_for_url("**/devidp/sso/**")
        _shot(page, "new-project-2-choose")
        page.click("button[name=person][value=alice]")
        page.wait_for_url(f"{url}/devidp/")
        assert "alice" in page.locator("#devidp-signed-in").inner_text()
        _shot(page, "new-project-3-signed-in")
        page.click("#devidp-logout")
        page.wait_for_url(f"{url}/**")
        page.goto(f"{url}/devidp/")
        assert page.locator("#devidp-signed-in").count() == 0
    assert oct((project / ".saml_jit" / "keys" / "sp-signing.key").stat().st_mode & 0o777) == "0o600"


def test_demo_edit_a_persons_groups_at_the_idp_and_see_the_diff(demo):
    url, _db = demo
    with _page("demo-edit") as page:
        _demo_login(page, url, "bob")
        page.wait_for_url(f"{url}/")
        page.click("text=Log out")
        page.wait_for_selector("text=You are not signed in")
        page.click("text=Log in with SAML")
        page.wait_for_url("**/devidp/sso/**")
        page.locator("tr", has_text="Bob Brown").locator("text=Edit attributes and groups").click()
        page.wait_for_url("**/devidp/people/bob/**")
        page.fill("#id_groups", "sales\nengineering")
        _shot(page, "demo-bob-edit")
        page.click("button[type=submit]")
        page.wait_for_url("**/devidp/sso/redirect/**")  # back to the same sign-in request
        page.click("button[name=person][value=bob]")
        page.wait_for_url(f"{url}/")
        assert page.locator("h2:has-text('Groups') + ul").inner_text().split("\n") == ["Engineering", "Sales"]
        diff = page.locator("pre.diff").first.inner_text()
        assert '"added": [\n      "Engineering"\n    ]' in diff
        _shot(page, "demo-bob-updated")
