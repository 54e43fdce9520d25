"""The dashboard and a report in a real browser: Playwright driving Debian's chromium against a live server.

Skips when the ``playwright`` package or ``/usr/bin/chromium`` is missing
(``pip install playwright``; ``apt-get install chromium`` — no
``playwright install``: the system's chromium is used). Screenshots go to
``tests/artifacts/`` (git-ignored); with ``SAML_JIT_UPDATE_SCREENSHOT=1`` (or
when it is missing) the dashboard's also becomes ``docs/dashboard.png``, the
one the README shows.
"""

from __future__ import annotations

import os
import random
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from saml_jit.models import AccountLifecycle, EventReview, FederatedIdentity, ProvisioningEvent
from saml_jit.review import dashboard
from tests.federation import IDP_A_ID, IDP_B_ID

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
PASSWORD = "browser-test-password"  # a throw-away account of the test database

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
)

User = get_user_model()


def _person(name: str, email: str, **fields):
    if User.USERNAME_FIELD == "email":
        return User._default_manager.create(email=email, **fields)
    return User._default_manager.create(**{User.USERNAME_FIELD: name}, email=email, **fields)


def _event(kind: str, when, idp: str = IDP_A_ID, reason: str = "", **fields) -> ProvisioningEvent:
    return ProvisioningEvent(kind=kind, created_at=when, idp_entity_id=idp, reason_code=reason, **fields)


def _events(rng: random.Random) -> None:
    """A month of logins, denials and rejections from two IdPs, and linked events needing review."""
    now, rows = timezone.now(), []
    idps, denials = [IDP_A_ID, IDP_B_ID], ["email_in_use", "missing_attribute", "inactive"]
    rejections = ["bad_signature", "expired", "replay"]
    for offset in range(30):
        day = now - timedelta(days=offset)
        rows += [_event(rng.choice(["login"] * 6 + ["updated", "created"]), day, rng.choice(idps)) for _ in range(30)]
        rows += [_event("denied", day, reason=rng.choice(denials)) for _ in range(rng.randint(0, 6))]
        rows += [_event("rejected", day, rng.choice(idps), rng.choice(rejections)) for _ in range(rng.randint(0, 4))]
    ProvisioningEvent.objects.bulk_create(rows)
    linked = [_event("linked", now - timedelta(days=days), review_required=True) for days in (1, 3, 6, 9, 12, 15, 20)]
    linked = ProvisioningEvent.objects.bulk_create(linked)
    EventReview.objects.create(event=linked[-1], reviewed_by="auditor", reviewed_at=now - timedelta(days=4))


def _accounts() -> None:
    now = timezone.now()
    for n in range(12):
        user = _person(f"person{n}", f"person{n}@example.org", first_name=f"P{n}", last_name="Example")
        state = "pending_approval" if n == 0 else "suspended" if n == 1 else "active"
        AccountLifecycle.objects.create(user=user, state=state, created_by="scim" if n % 4 == 0 else "jit")
        idp = IDP_A_ID if n % 2 else IDP_B_ID
        FederatedIdentity.objects.create(
            user=user, idp_entity_id=idp, subject=f"s{n}", first_asserted_at=now, last_asserted_at=now
        )
    twin = _person("person1-local", "Person1@example.org")
    AccountLifecycle.objects.create(user=twin, created_by="local")


@pytest.fixture(scope="session")
def admin_static():
    """STATIC_URL and the admin's own static files, set before ``live_server`` starts (session-scoped).

    The test project sets no STATIC_URL, and pytest-django's live server
    cannot answer any request without one. The override stays for the rest of
    the session (no other test serves or asserts on static files).
    """
    import django.contrib.admin

    override = override_settings(
        STATIC_URL="/static/", STATIC_ROOT=str(Path(django.contrib.admin.__file__).resolve().parent / "static")
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture
def auditor(transactional_db):
    cache.clear()
    _events(random.Random(7))
    _accounts()
    user = _person("auditor", "auditor@example.org", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    codenames = ["view_governancedashboard", "view_governancereport", "view_provisioningevent", "view_accountlifecycle"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="saml_jit", codename__in=codenames))
    return user


def test_dashboard_and_a_report_in_chromium(admin_static, live_server, auditor, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop here
    ARTIFACTS.mkdir(exist_ok=True)
    expected_denials = ProvisioningEvent.objects.filter(
        kind="denied", created_at__gte=dashboard.day_start(dashboard.window_days(30, timezone.now())[0])
    ).count()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(15_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/saml_jit/governancedashboard/")
            page.fill("#id_username", auditor.get_username())
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/saml_jit/governancedashboard/")
            page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
            page.reload()
            assert page.locator("#figure-denials td.figure").inner_text() == str(expected_denials)
            assert page.locator("#figure-pending_approvals td.figure").inner_text() == "1"
            assert page.locator("#figure-review_debt td.figure").inner_text() == "6"
            assert page.locator("svg.saml-jit-chart").count() == 9
            assert page.locator("svg.saml-jit-chart title", has_text="Denials per day, by reason code").count() == 1
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            page.click("#figure-sso_and_local_email th a")
            page.wait_for_url("**/governancereport/sso_and_local_email/")
            assert "SSO and local account with the same email" in page.locator("h1").inner_text()
            assert page.locator("#report-count").inner_text().startswith("2 rows")
            assert page.locator("#result_list tbody tr").count() == 2
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    if os.environ.get("SAML_JIT_UPDATE_SCREENSHOT") or not DOCS_SCREENSHOT.exists():
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "dashboard.png", DOCS_SCREENSHOT)
