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
PASSWORD = "browser-test-password"  # noqa: S105 - a throw-away account of the test database

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


def _events(rng: random.Random) -> None:
    now = timezone.now()
    rows = []
    for offset in range(30):
        day = now - timedelta(days=offset)
        for _ in range(rng.randint(20, 40)):
            rows.append(ProvisioningEvent(kind=rng.choice(["login"] * 6 + ["updated", "created"]), created_at=day,
                                          idp_entity_id=rng.choice([IDP_A_ID, IDP_B_ID])))  # fmt: skip
        for _ in range(rng.randint(0, 6)):
            rows.append(ProvisioningEvent(kind="denied", created_at=day, idp_entity_id=IDP_A_ID,
                                          reason_code=rng.choice(["email_in_use", "missing_attribute", "inactive"])))  # fmt: skip
        for _ in range(rng.randint(0, 4)):
            rows.append(ProvisioningEvent(kind="rejected", created_at=day, idp_entity_id=rng.choice([IDP_A_ID, IDP_B_ID]),
                                          reason_code=rng.choice(["bad_signature", "expired", "replay"])))  # fmt: skip
    ProvisioningEvent.objects.bulk_create(rows)
    linked = [ProvisioningEvent(kind="linked", created_at=now - timedelta(days=d), review_required=True)
              for d in (1, 3, 6, 9, 12, 15, 20)]  # fmt: skip
    linked = ProvisioningEvent.objects.bulk_create(linked)
    EventReview.objects.create(event=linked[-1], reviewed_by="auditor", reviewed_at=now - timedelta(days=4))


def _accounts() -> None:
    now = timezone.now()
    for n in range(12):
        user = _person(f"person{n}", f"person{n}@example.org", first_name=f"P{n}", last_name="Example")
        state = "pending_approval" if n == 0 else "suspended" if n == 1 else "active"
        AccountLifecycle.objects.create(user=user, state=state, created_by="scim" if n % 4 == 0 else "jit")
        FederatedIdentity.objects.create(user=user, idp_entity_id=IDP_A_ID if n % 2 else IDP_B_ID, subject=f"s{n}",
                                         first_asserted_at=now, last_asserted_at=now)  # fmt: skip
    twin = _person("person1-local", "Person1@example.org")
    AccountLifecycle.objects.create(user=twin, created_by="local")


@pytest.fixture
def auditor(transactional_db):
    cache.clear()
    _events(random.Random(7))  # noqa: S311 - test data
    _accounts()
    user = _person("auditor", "auditor@example.org", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    codenames = ["view_governancedashboard", "view_governancereport", "view_provisioningevent", "view_accountlifecycle"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="saml_jit", codename__in=codenames))
    return user


def test_dashboard_and_a_report_in_chromium(live_server, auditor, monkeypatch):
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
