"""The admin dashboard with 1,000,000 events over 95 days and 100,000 accounts.

Fills the database (accounts with lifecycle rows, identities from two
configured IdPs and one that is not, grants expiring soon, events with
reason codes, a few thousand needing review), then renders the dashboard
page through the admin with the test client: the first render of each
window (which rolls the past days up), then five more (the median is the
figure that matters). Prints queries per render, the slowest queries, and
the query plan of every query of a steady-state render, flagging full
scans of a table, a view that finds the account figures stale (its page,
then the recount after the response, every ``ACCOUNT_COUNTS_MAX_AGE``
seconds) and what recounting them in the view costs (``?recount=1``).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saml_jit.models import AccountLifecycle, EventReview, FederatedIdentity, Grant, ProvisioningEvent
from saml_jit.review import dashboard

BATCH = 20_000
DAYS = 95
IDPS = (
    "https://idp-a.example.org/idp/metadata",
    "https://idp-b.example.net/idp/metadata",
    "https://retired-idp.example.com/idp",
)
KINDS = ["login"] * 70 + ["updated"] * 8 + ["created"] * 3 + ["linked"] * 1 + ["denied"] * 10 + ["rejected"] * 6
KINDS += ["logout"] * 2
DENIALS = ("email_in_use", "missing_attribute", "creation_disabled", "missing_required_group", "inactive")
REJECTIONS = ("bad_signature", "expired", "replay", "wrong_audience", "unsolicited", "issuer_mismatch")
PAGES = ("/admin/saml_jit/governancedashboard/", "/admin/saml_jit/governancedashboard/?days=90")


def fill_accounts(count: int, rng: random.Random, now: Any) -> None:
    users = get_user_model()._default_manager
    made = 0
    while made < count:
        size = min(BATCH, count - made)
        batch = [
            users.model(
                username=f"user-{n}",
                email=f"user-{n % (count - 50)}@example.org",  # 50 shared emails
                first_name=f"First{n % 40_000}",
                last_name=f"Last{n % 997}",
                password="!" if n % 100 else "md5$salt$0123456789abcdef",
                is_staff=n % 5000 == 0,
            )
            for n in range(made, made + size)
        ]
        users.bulk_create(batch)
        made += size
    ids = list(users.order_by("pk").values_list("pk", flat=True))
    _lifecycles(ids, rng, now)
    _identities(ids, rng, now)
    _grants(ids, rng, now)


def _lifecycles(ids: list[Any], rng: random.Random, now: Any) -> None:
    states = ["active"] * 95 + ["suspended"] * 2 + ["deprovisioned"] * 2 + ["pending_approval"]
    origins = ["jit"] * 80 + ["scim"] * 15 + ["local"] * 5
    rows = [
        AccountLifecycle(
            user_id=pk,
            state=rng.choice(states),
            since=now - timedelta(days=rng.uniform(0, 400)),
            source="saml",
            created_by=rng.choice(origins),
        )
        for pk in ids
    ]
    AccountLifecycle.objects.bulk_create(rows, batch_size=BATCH)


def _identities(ids: list[Any], rng: random.Random, now: Any) -> None:
    rows = []
    for n, pk in enumerate(ids):
        if n % 20 == 19:
            continue  # local accounts
        first = now - timedelta(days=rng.uniform(1, 400))
        returned = rng.random() < 0.9
        last = first + (now - first) * rng.random() if returned else first
        idp = IDPS[2] if n % 1000 == 0 else IDPS[n % 2]
        rows.append(
            FederatedIdentity(
                user_id=pk,
                idp_entity_id=idp,
                subject=f"s-{n}",
                bound_at=first,
                first_asserted_at=first,
                last_asserted_at=last,
            )
        )
    FederatedIdentity.objects.bulk_create(rows, batch_size=BATCH)


def _grants(ids: list[Any], rng: random.Random, now: Any) -> None:
    rows = [
        Grant(user_id=pk, idp_entity_id=IDPS[0], kind="staff", expires_at=now + timedelta(hours=rng.uniform(-24, 72)))
        for pk in ids[::20]
    ]
    Grant.objects.bulk_create(rows, batch_size=BATCH)


def fill_events(count: int, rng: random.Random, now: Any) -> None:
    made, span = 0, DAYS * 86400
    while made < count:
        size = min(BATCH, count - made)
        ProvisioningEvent.objects.bulk_create(_event(made + i, count, span, rng, now) for i in range(size))
        made += size
        print(f"  {made:,} events", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    due = ProvisioningEvent.objects.filter(review_required=True).order_by("pk").values_list("pk", flat=True)
    reviewed = [EventReview(event_id=pk, reviewed_by="bench", reviewed_at=now) for n, pk in enumerate(due) if n % 5]
    EventReview.objects.bulk_create(reviewed, batch_size=BATCH)


def _event(n: int, count: int, span: int, rng: random.Random, now: Any) -> ProvisioningEvent:
    kind = rng.choice(KINDS)
    reason = rng.choice(DENIALS) if kind == "denied" else rng.choice(REJECTIONS) if kind == "rejected" else ""
    return ProvisioningEvent(
        created_at=now - timedelta(seconds=span * (count - n) / count),
        kind=kind,
        idp_entity_id=IDPS[n % 3],
        subject=f"s-{n % 95_000}",
        assertion_id=f"id-{n}",
        username=f"user-{n % 95_000}",
        reason_code=reason,
        review_required=n % 200 == 0,
    )


def render(client: Client, url: str) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed, list(queries.captured_queries)


def explain(sql: str) -> list[str]:
    """The plan of one captured query, as lines."""
    if sql.startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")) or not sql.lstrip().upper().startswith("SELECT"):
        return []
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        rows = cursor.fetchall()
    return [str(row[-1]) for row in rows]


def full_scans(plan: list[str]) -> list[str]:
    if connection.vendor == "sqlite":
        return [line for line in plan if line.startswith("SCAN") and "INDEX" not in line]
    return [line.strip() for line in plan if "Seq Scan" in line]


def report_plans(queries: list[dict[str, Any]]) -> None:
    print("\n  query plans of a steady-state render (full table scans flagged with !):")
    for query in queries:
        plan = explain(query["sql"])
        if not plan:
            continue
        scans = full_scans(plan)
        mark = "!" if scans else " "
        print(f"  {mark} {float(query['time']) * 1000:7.1f} ms  {query['sql'][:100]}")
        for line in scans:
            print(f"        {line}")


def stale_render(client: Client, url: str) -> tuple[float, float]:
    """A view that finds the account figures stale: ms until its page is ready, and ms of the recount after it.

    The test client closes the response (which runs the recount) before it
    returns, so the recount is timed on its own and taken off the total.
    """
    counted = dashboard.account_counts()
    old = counted.counted_at - timedelta(seconds=dashboard.ACCOUNT_COUNTS_MAX_AGE + 1)
    cache.set(dashboard.CACHE_KEY, (old, counted.reports, counted.states, counted.origins))
    original, timed = dashboard.recount_after_response, []

    def recount() -> None:
        started = time.perf_counter()
        original()
        timed.append((time.perf_counter() - started) * 1000)

    dashboard.recount_after_response = recount  # type: ignore[assignment]
    try:
        total, _ = render(client, url)
    finally:
        dashboard.recount_after_response = original  # type: ignore[assignment]
    assert timed, "the stale figures were not recounted after the response"
    return total - timed[0], timed[0]


def run(events: int, accounts: int) -> None:
    rng = random.Random(13)  # noqa: S311 - benchmark data, not secrets
    now = timezone.now()
    started = time.perf_counter()
    fill_accounts(accounts, rng, now)
    fill_events(events, rng, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"\nAdmin dashboard, {events:,} events over {DAYS} days, {accounts:,} accounts "
        f"({connection.vendor}; filled in {time.perf_counter() - started:.0f} s)\n"
    )
    admin = get_user_model()._default_manager.create_superuser("bench-admin", "bench@example.org", "pw")
    client = Client()
    client.force_login(admin)
    for url in PAGES:
        first, queries = render(client, url)
        timed = [render(client, url) for _ in range(5)]
        median = statistics.median(elapsed for elapsed, _ in timed)
        steady = timed[-1][1]
        print(
            f"{url:48} first {first:8.0f} ms ({len(queries)} queries)   then median {median:6.0f} ms "
            f"({len(steady)} queries)"
        )
        for query in sorted(steady, key=lambda q: -float(q["time"]))[:4]:
            print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:110]}")
    page, after = stale_render(client, PAGES[0])
    print(
        f"\na view finding the account figures older than {dashboard.ACCOUNT_COUNTS_MAX_AGE} s: page {page:.0f} ms, "
        f"then the recount after the response {after:.0f} ms"
    )
    recount, queries = render(client, PAGES[0] + "?recount=1")
    print(
        f"\nrecounting the account figures (every {dashboard.ACCOUNT_COUNTS_MAX_AGE} s, or ?recount=1): "
        f"{recount:.0f} ms ({len(queries)} queries)"
    )
    for query in sorted(queries, key=lambda q: -float(q["time"]))[:10]:
        print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:110]}")
    report_plans(steady)
