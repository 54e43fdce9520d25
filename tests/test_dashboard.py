"""The dashboard: roll-up, figures and their links, SVG charts, and the admin pages behind their permissions."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saml_jit.models import AccountLifecycle, DailyEventCount, ProvisioningEvent, RolledUpDay
from saml_jit.review import charts, dashboard, reports
from tests.federation import IDP_A_ID, IDP_B_ID

User = get_user_model()
DASHBOARD = "/admin/saml_jit/governancedashboard/"
REPORTS = "/admin/saml_jit/governancereport/"
HOSTILE = '<script>alert("x")</script>"><svg onload=alert(1)>&amp;'


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def event(kind: str, when, *, reason: str = "", idp: str = IDP_A_ID, **fields) -> ProvisioningEvent:
    return ProvisioningEvent.objects.create(kind=kind, created_at=when, reason_code=reason, idp_entity_id=idp, **fields)


def noon(days_ago: int):
    day = timezone.localdate(timezone.now(), dashboard.tz()) - timedelta(days=days_ago)
    return dashboard.day_start(day) + timedelta(hours=12)


def person(name: str, email: str | None = None, **fields):
    email = email or f"{name}@example.org"
    key = (
        {User.USERNAME_FIELD: email} if User.USERNAME_FIELD == "email" else {User.USERNAME_FIELD: name, "email": email}
    )
    return User._default_manager.create(**key, **fields)


def staff_with(*codenames: str):
    user = person(f"viewer-{'-'.join(codenames)}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="saml_jit", codename__in=codenames))
    return user


def live_counts(day) -> dict:
    start, end = dashboard.day_start(day), dashboard.day_start(day + timedelta(days=1))
    rows = (
        ProvisioningEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("kind", "reason_code", "idp_entity_id", "source")
        .annotate(n=Count("pk"))
    )
    return {row[:4]: row[4] for row in rows}


def stored_counts(day) -> dict:
    rows = DailyEventCount.objects.filter(day=day)
    return {(r.kind, r.reason_code, r.idp_entity_id, r.source): r.count for r in rows}


# -- the roll-up -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_rolled_up_day_equals_its_live_count_and_today_stays_live():
    for hour in range(0, 24, 3):
        when = noon(3) - timedelta(hours=12) + timedelta(hours=hour)
        event("login", when)
        event("denied", when, reason="email_in_use", idp=IDP_B_ID)
        event("rejected", when, reason="bad_signature", source="saml")
    event("login", noon(0))
    days = dashboard.window_days(30, timezone.now())
    rows = dashboard.event_counts(days, timezone.now())
    past = days[-4]
    assert RolledUpDay.objects.filter(day=past).exists()
    assert stored_counts(past) == live_counts(past)
    assert sum(stored_counts(past).values()) == 24
    today = days[-1]
    assert not RolledUpDay.objects.filter(day=today).exists()
    assert not DailyEventCount.objects.filter(day=today).exists()
    assert (today, "login", "", IDP_A_ID, 1) in rows
    event("login", noon(0))
    assert (today, "login", "", IDP_A_ID, 2) in dashboard.event_counts(days, timezone.now())


@pytest.mark.django_db
def test_each_past_day_is_rolled_up_once(django_assert_num_queries):
    event("login", noon(2))
    days = dashboard.window_days(30, timezone.now())
    dashboard.event_counts(days, timezone.now())
    assert RolledUpDay.objects.count() == 29
    with django_assert_num_queries(3):  # which days are done, the stored counts, today live
        dashboard.event_counts(days, timezone.now())
    assert not dashboard.roll_up_day(days[-3])  # another process was first: its counts stand, once
    assert DailyEventCount.objects.filter(day=days[-3]).count() == 1


@pytest.mark.django_db
def test_an_event_stored_later_in_a_rolled_up_day_waits_for_forget():
    """Decision: a rolled-up day is final (events are append-only and stamped when written).

    An event written afterwards with an earlier timestamp (an import, a restored backup) is in the
    event list at once, in the charts only once the day's roll-up is rebuilt with ``forget``.
    """
    event("login", noon(5))
    days = dashboard.window_days(30, timezone.now())
    dashboard.event_counts(days, timezone.now())
    event("login", noon(5))
    day = days[-6]
    assert stored_counts(day) == {("login", "", IDP_A_ID, "saml"): 1}
    dashboard.forget([day])
    rows = dashboard.event_counts(days, timezone.now())
    assert (day, "login", "", IDP_A_ID, 2) in rows


@pytest.mark.django_db
def test_a_day_that_just_ended_is_counted_live_until_it_settles():
    today = timezone.localdate(timezone.now(), dashboard.tz())
    just_after_midnight = dashboard.day_start(today) + dashboard.SETTLE / 2
    yesterday = today - timedelta(days=1)
    event("login", dashboard.day_start(yesterday) + timedelta(hours=23, minutes=59))
    days = dashboard.window_days(30, just_after_midnight)
    rows = dashboard.event_counts(days, just_after_midnight)
    assert not RolledUpDay.objects.filter(day=yesterday).exists()
    assert (yesterday, "login", "", IDP_A_ID, 1) in rows


# -- charts ---------------------------------------------------------------------


def test_charts_escape_hostile_labels_and_drop_foreign_links():
    days = dashboard.window_days(3, timezone.now())
    chart = charts.Chart(HOSTILE, HOSTILE, HOSTILE, day_links={days[0].isoformat(): "javascript:alert(1)"})
    stacked = charts.stacked_bars(
        chart,
        days,
        [
            charts.Stack(HOSTILE, [1, 2, 3], href="//evil.example/"),
            charts.Stack("ok", [0, 1, 0], href="/admin/?a=1&b=2"),
        ],
    )
    bars = charts.horizontal_bars(chart, [charts.Bar(HOSTILE, 4, href="javascript:alert(1)"), charts.Bar("x", 0)])
    for svg in (stacked, bars):
        root = ET.fromstring(svg)  # well-formed: nothing broke out of a text node or an attribute
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "<script" not in svg and "<svg onload" not in svg
        assert "javascript:" not in svg and "evil.example" not in svg
        assert root.find("{http://www.w3.org/2000/svg}title").text == HOSTILE
        assert root.get("role") == "img"
    assert 'href="/admin/?a=1&amp;b=2"' in stacked


def test_charts_say_what_they_show():
    days = dashboard.window_days(2, timezone.now())
    svg = charts.stacked_bars(charts.Chart("c", "Logins per day", "2 in 2 days"), days, [charts.Stack("login", [1, 1])])
    assert '<title id="c-title">Logins per day</title>' in svg
    assert f"<title>{days[0].isoformat()} · login: 1</title>" in svg
    assert "login (2)" in svg  # the legend's total
    assert charts._nice_max(0) == 2 and charts._nice_max(7) == 8 and charts._nice_max(130) == 200


def test_many_categories_fold_into_other():
    days = dashboard.window_days(1, timezone.now())
    per_day = {f"reason_{n}": {days[0]: n + 1} for n in range(12)}
    stacks = dashboard._stacks(per_day, days, lambda value: f"/x/?r={value}", "reason")
    assert len(stacks) == dashboard.TOP
    assert stacks[0].label == "reason_11" and stacks[-1].other
    assert sum(s.values[0] for s in stacks) == sum(range(1, 13))


# -- the admin pages ------------------------------------------------------------------


def links(content: bytes) -> dict[str, str]:
    """Figure id -> the href of its link."""
    html = content.decode()
    return {
        code: unescape(href)
        for code, href in re.findall(r'<tr id="figure-([a-z_]+)">\s*<th scope="row"><a href="([^"]+)"', html)
    }


@pytest.mark.django_db
def test_dashboard_needs_the_view_permission(client):
    client.force_login(staff_with("view_governancereport"))
    assert client.get(DASHBOARD).status_code == 403
    client.force_login(staff_with("view_governancedashboard"))
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert client.get(REPORTS).status_code == 403
    assert client.get(REPORTS + "duplicate_email/").status_code == 403
    assert client.get(REPORTS + "duplicate_email/export/csv/").status_code == 403


@pytest.mark.django_db
def test_reports_need_their_view_permission_and_open_no_event(client):
    row = event("login", timezone.now())
    client.force_login(staff_with("view_governancereport"))
    assert client.get(REPORTS).status_code == 200
    assert client.get(REPORTS + "duplicate_email/").status_code == 200
    assert client.get(REPORTS + "nonsense/").status_code == 404
    assert client.get(REPORTS + "duplicate_email/export/xlsx/").status_code == 404
    for proxy in ("governancereport", "governancedashboard"):
        assert client.get(f"/admin/saml_jit/{proxy}/{row.pk}/change/").status_code == 404
        assert client.get(f"/admin/saml_jit/{proxy}/add/").status_code == 404


@pytest.mark.django_db
def test_figures_link_to_their_filtered_lists(admin_client):
    event("denied", noon(1), reason="email_in_use")
    event("denied", noon(0), reason="inactive")
    event("login", noon(0))
    event("rejected", noon(40), reason="bad_signature")  # outside 30 days, inside 90
    pending = person("waiting")
    AccountLifecycle.objects.create(user=pending, state="pending_approval", created_by="jit")
    response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
    found = links(response.content)
    denials = urlparse(found["denials"])
    assert denials.path == "/admin/saml_jit/provisioningevent/"
    query = parse_qs(denials.query)
    assert query["kind__in"] == ["denied"]
    assert query["created_at__gte"] == [str(dashboard.day_start(dashboard.window_days(30, timezone.now())[0]))]
    page = admin_client.get(found["denials"])
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2
    logins = admin_client.get(found["logins"])
    assert logins.context["cl"].result_count == 1
    assert parse_qs(urlparse(found["logins"]).query)["kind__in"] == ["created,linked,updated,login"]
    assert admin_client.get(found["rejections"]).context["cl"].result_count == 0
    ninety = links(admin_client.get(DASHBOARD + "?days=90").content)
    assert admin_client.get(ninety["rejections"]).context["cl"].result_count == 1
    approvals = admin_client.get(found["pending_approvals"])
    assert urlparse(found["pending_approvals"]).query == "state__exact=pending_approval"
    assert list(approvals.context["cl"].result_list) == [pending.saml_lifecycle]
    for code in ("duplicate_email", "review_debt", "no_evidence", "expiring_privileges"):
        assert found[code] == f"{REPORTS}{code}/"
        assert admin_client.get(found[code]).status_code == 200


@pytest.mark.django_db
def test_chart_links_filter_by_day_and_category(admin_client):
    event("denied", noon(2), reason="email_in_use", idp=IDP_B_ID)
    html = admin_client.get(DASHBOARD).content.decode()
    legend = re.search(r'<a href="([^"]+)"><rect[^>]*/><text[^>]*><title>email_in_use</title>', html)
    assert legend, "the reason's legend entry links to its list"
    query = parse_qs(urlparse(unescape(legend.group(1))).query)
    assert query["reason_code__exact"] == ["email_in_use"] and query["kind__in"] == ["denied"]
    assert admin_client.get(unescape(legend.group(1))).context["cl"].result_count == 1
    by_idp = re.search(rf'<a href="([^"]+)"><rect[^>]*/><text[^>]*><title>{re.escape(IDP_B_ID)}</title>', html)
    assert admin_client.get(unescape(by_idp.group(1))).context["cl"].result_count == 1


@pytest.mark.django_db
def test_dashboard_escapes_what_came_from_outside(admin_client):
    event("rejected", noon(0), reason="bad_signature", idp=HOSTILE[:200])
    event("denied", noon(1), reason=HOSTILE[:64])
    html = admin_client.get(DASHBOARD).content.decode()
    assert "<script>alert" not in html and "<svg onload" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.django_db
def test_account_figures_are_counted_from_the_cache_until_recounted(admin_client):
    person("one", "same@example.org")
    found = links(admin_client.get(DASHBOARD).content)
    assert re.search(
        r'id="figure-duplicate_email">.*?<td class="figure"><a [^>]*>0</a>',
        admin_client.get(DASHBOARD).content.decode(),
        re.S,
    )
    person("two", "SAME@example.org")
    html = admin_client.get(DASHBOARD).content.decode()
    assert re.search(r'id="figure-duplicate_email">.*?<td class="figure"><a [^>]*>0</a>', html, re.S)
    page = admin_client.get(found["duplicate_email"])  # the report's page counts live
    assert page.context["page"].paginator.count == 2
    html = admin_client.get(DASHBOARD + "?recount=1").content.decode()
    assert re.search(r'id="figure-duplicate_email">.*?<td class="figure"><a [^>]*>2</a>', html, re.S)


def duplicates_shown(client) -> str:
    html = client.get(DASHBOARD).content.decode()
    return re.search(r'id="figure-duplicate_email">.*?<td class="figure"><a [^>]*>(\d+)</a>', html, re.S).group(1)


def age_the_account_figures() -> None:
    counted = dashboard.account_counts()
    old = counted.counted_at - timedelta(seconds=dashboard.ACCOUNT_COUNTS_MAX_AGE + 1)
    cache.set(dashboard.CACHE_KEY, (old, counted.reports, counted.states, counted.origins))


@pytest.mark.django_db
def test_stale_account_figures_are_shown_then_recounted_after_the_response(admin_client):
    person("one", "same@example.org")
    assert duplicates_shown(admin_client) == "0"
    person("two", "SAME@example.org")
    age_the_account_figures()
    assert duplicates_shown(admin_client) == "0"  # the page did not wait for the count
    assert dashboard.account_counts().reports["duplicate_email"] == 2  # counted once the page was sent
    assert duplicates_shown(admin_client) == "2"
    assert cache.get(dashboard.RECOUNT_LOCK) is None


@pytest.mark.django_db
def test_only_one_process_recounts_at_a_time(admin_client):
    person("one", "same@example.org")
    duplicates_shown(admin_client)
    person("two", "SAME@example.org")
    age_the_account_figures()
    cache.add(dashboard.RECOUNT_LOCK, True)  # another app server is counting
    assert duplicates_shown(admin_client) == "0"
    assert dashboard.account_counts().reports["duplicate_email"] == 0


@pytest.mark.django_db
def test_a_failed_recount_after_the_response_is_logged_not_raised(admin_client, monkeypatch, caplog):
    duplicates_shown(admin_client)
    age_the_account_figures()

    def broken(now=None):
        raise RuntimeError("database went away")

    monkeypatch.setattr(dashboard, "count_accounts", broken)
    assert admin_client.get(DASHBOARD).status_code == 200
    assert "recounting the account figures failed" in caplog.text
    assert cache.get(dashboard.RECOUNT_LOCK) is None  # the next view tries again


@pytest.mark.django_db
def test_a_steady_render_reads_no_account_table(admin_client):
    event("login", noon(3))
    person("someone")
    admin_client.get(DASHBOARD)
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(DASHBOARD).status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) <= 16
    assert not [q for q in sql if "saml_jit_federatedidentity" in q]
    assert not [q for q in sql if '"created_by"' in q]


@pytest.mark.django_db
def test_reports_page_lists_each_report_with_its_count(admin_client):
    person("one", "dup@example.org")
    person("two", "Dup@example.org")
    response = admin_client.get(REPORTS)
    counts = {row["report"].code: row["count"] for row in response.context["rows"]}
    assert counts["duplicate_email"] == 2
    assert counts["inactive_sessions"] == 0
    assert set(counts) == set(reports.REPORTS)


@pytest.mark.django_db
def test_report_page_paginates_and_exports(admin_client, monkeypatch):
    monkeypatch.setattr("saml_jit.admin.dashboard.PER_PAGE", 2)
    for n in range(3):
        person(f"dup{n}", ("dup@example.org", "Dup@example.org", "DUP@example.org")[n], first_name="=HYPERLINK(1)")
    page = admin_client.get(REPORTS + "duplicate_email/")
    assert page.context["page"].paginator.count == 3 and len(page.context["table"]) == 2
    assert len(admin_client.get(REPORTS + "duplicate_email/?p=2").context["table"]) == 1
    html = page.content.decode()
    assert "export/csv/" in html and "export/jsonl/" in html
    export = admin_client.get(REPORTS + "duplicate_email/export/csv/")
    assert export["Content-Type"].startswith("text/csv")
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0] == ",".join(reports.REPORTS["duplicate_email"].fields)
    assert len(lines) == 4
    jsonl = admin_client.get(REPORTS + "duplicate_email/export/jsonl/")
    assert len(b"".join(jsonl.streaming_content).decode().splitlines()) == 3


@pytest.mark.django_db
def test_report_days_parameter(admin_client):
    page = admin_client.get(REPORTS + "no_evidence/?days=7")
    assert page.context["days"] == 7
    assert admin_client.get(REPORTS + "no_evidence/?days=nonsense").context["days"] == reports.ORPHAN_DAYS
    assert admin_client.get(REPORTS + "no_evidence/?days=-4").context["days"] == 1
    assert admin_client.get(REPORTS + "duplicate_email/?days=7").context["days"] is None


@pytest.mark.django_db
def test_review_debt_figure_and_chart(admin_client):
    # Four days and an hour ago, whatever the time of day the test runs at (noon(4) is 3 days old before noon).
    event("linked", timezone.now() - timedelta(days=4, hours=1), review_required=True)
    html = admin_client.get(DASHBOARD).content.decode()
    assert re.search(r'id="figure-review_debt">.*?oldest: 4 days.*?<td class="figure"><a [^>]*>1</a>', html, re.S)
    assert "Review debt over time" in html
