"""The event changelist with many rows: render time and the queries behind it."""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saml_jit.models import EventKind, ProvisioningEvent

BATCH = 20_000
PAGES = (
    "/admin/saml_jit/provisioningevent/",
    "/admin/saml_jit/provisioningevent/?p=50",
    "/admin/saml_jit/provisioningevent/?kind__exact=denied",
    "/admin/saml_jit/provisioningevent/?q=user-4242",
)


def fill(count: int) -> None:
    kinds = [EventKind.LOGIN] * 8 + [EventKind.UPDATED, EventKind.DENIED]
    now = timezone.now()
    made = 0
    rng = random.Random(42)  # noqa: S311 - benchmark data, not secrets
    while made < count:
        size = min(BATCH, count - made)
        ProvisioningEvent.objects.bulk_create(
            ProvisioningEvent(
                created_at=now - timedelta(seconds=(count - made - i) * 30),
                kind=rng.choice(kinds),
                idp_entity_id="https://idp-a.example.org/idp/metadata",
                subject=f"subject-{(made + i) % 50_000}",
                assertion_id=f"id-{made + i}",
                username=f"user-{(made + i) % 50_000}",
            )
            for i in range(size)
        )
        made += size
        print(f"  {made:,} events", file=sys.stderr, end="\r")
    print(file=sys.stderr)


def run(count: int) -> None:
    start = time.perf_counter()
    fill(count)
    print(
        f"\nAdmin event changelist, {count:,} events "
        f"({connection.vendor}; filled in {time.perf_counter() - start:.0f} s)\n"
    )
    admin = get_user_model()._default_manager.create_superuser("bench-admin", "bench@example.org", "pw")
    client = Client()
    client.force_login(admin)
    for url in PAGES:
        client.get(url)  # warm caches
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
        full_counts = [
            q["sql"]
            for q in queries.captured_queries
            if "COUNT(" in q["sql"].upper() and " WHERE " not in q["sql"].upper()
        ]
        print(
            f"{url:58} median {statistics.median(times):8.1f} ms  queries {len(queries.captured_queries):3d}  "
            f"full-table COUNT(*): {len(full_counts)}"
        )
        slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:2]
        for query in slowest:
            print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:110]}")
