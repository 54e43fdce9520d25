"""Evidence exports at size: wall time, rows per second and peak memory growth, small against large.

Events: fills a tenth of ``--events`` (default 1,000,000), exports them, fills
up to ``--events`` and exports again — CSV and JSON lines, through
``saml_jit_export events --output FILE`` and through the admin's streamed
download of the event list (``?_export=csv``; the body is consumed and
dropped, as a browser saving it would). The access snapshot the same, with a
tenth of ``--accounts`` (default 100,000) and then all of them: JIT accounts
with one or two identities, two groups each (SAML grants, some expiring, SCIM
groups and manual ones), a few staff and superusers. Then the snapshot page:
its first page and its last (``?after=``: keyset, no ``OFFSET``).

Memory is the growth of the process's peak resident set during one export
(``VmHWM``, reset before each); with ``--trace-memory`` also the peak of
Python allocations (``tracemalloc``; it slows the run, so those runs are
separate and their times are not reported). Bounded memory: the large
export's growth is the small one's, not ten times it.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from saml_jit.models import AccountLifecycle, EventKind, FederatedIdentity, Grant, GrantKind, ScimGroup
from saml_jit.models import ProvisioningEvent as Event

IDP_A = "https://idp-a.example.org/idp/metadata"
IDP_B = "https://idp-b.example.net/idp/metadata"
CHUNK = 10_000
STATUS = Path("/proc/self/status")
UNUSABLE = "!bench"
USABLE = "md5$bench$0123456789abcdef0123456789abcdef"  # looks usable; never checked
GROUPS = 20  # "group-00" (privileged, SAML grants that expire) … ; 15-19 are SCIM-managed
SCIM_GROUPS = {f"group-{n:02d}" for n in range(15, GROUPS)}
FORMATS = ("csv", "jsonl")


# ----------------------------------------------------------------------------
# Data


def fill_events(low: int, high: int) -> None:
    """Events ``low`` … ``high - 1``: logins, updates with a diff, denials with a message, every 30 s."""
    start = timezone.now() - timedelta(seconds=30 * high)
    for first in range(low, high, CHUNK):
        Event.objects.bulk_create(_event(i, start) for i in range(first, min(high, first + CHUNK)))
        print(f"  {min(high, first + CHUNK):,} events", file=sys.stderr, end="\r")
    print(file=sys.stderr)


def _event(i: int, start) -> Event:
    kind = (EventKind.UPDATED, EventKind.DENIED)[i % 2] if i % 10 < 2 else EventKind.LOGIN
    return Event(
        created_at=start + timedelta(seconds=30 * i),
        kind=kind,
        idp_entity_id=IDP_A,
        subject=f"subject-{i % 50_000:07d}",
        assertion_id=f"_id-{i:09d}",
        username=f"user-{i % 50_000:07d}",
        reason_code="email_domain_not_allowed" if kind == EventKind.DENIED else "",
        message="The email domain is not allowed for this IdP." if kind == EventKind.DENIED else "",
        diff={"last_name": ["Liddell", "Pleasance"]} if kind == EventKind.UPDATED else {},
        attributes={"mail": [f"user-{i % 50_000}@example.org"], "eduPersonAffiliation": ["member", "staff"]},
        ip_address="192.0.2.10",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) bench",
    )


def fill_accounts(low: int, high: int) -> None:
    groups = _groups()
    for first in range(low, high, CHUNK // 2):
        _accounts(first, min(high, first + CHUNK // 2), groups)
        print(f"  {min(high, first + CHUNK // 2):,} accounts", file=sys.stderr, end="\r")
    print(file=sys.stderr)


def _groups() -> list[Group]:
    groups = [Group.objects.get_or_create(name=f"group-{n:02d}")[0] for n in range(GROUPS)]
    for group in (g for g in groups if g.name in SCIM_GROUPS):
        ScimGroup.objects.get_or_create(group=group, defaults={"idp_entity_id": IDP_A})
    return groups


def _accounts(low: int, high: int, groups: list[Group]) -> None:
    users = get_user_model()
    made = users._default_manager.bulk_create(
        users(
            username=f"acct-{i:07d}",
            email=f"acct-{i:07d}@example.org",
            password=USABLE if i % 20 == 0 else UNUSABLE,
            is_staff=i % 50 == 0,
            is_superuser=i % 500 == 0,
        )
        for i in range(low, high)
    )
    if made and made[0].pk is None:  # backends that return no ids
        made = list(users._default_manager.filter(username__in=[u.username for u in made]).order_by("pk"))
    _identities(made, low)
    memberships = [(u, groups[(low + n) % GROUPS]) for n, u in enumerate(made)]
    memberships += [(u, groups[(low + n + 7) % GROUPS]) for n, u in enumerate(made)]
    users.groups.through.objects.bulk_create(users.groups.through(user=u, group=g) for u, g in memberships)
    _grants(made, memberships)


def _identities(made: list, low: int) -> None:
    seen = timezone.now() - timedelta(days=3)
    FederatedIdentity.objects.bulk_create(
        FederatedIdentity(
            user=u,
            idp_entity_id=idp,
            subject=f"{u.username}@{n}",
            bound_at=seen,
            first_asserted_at=seen,
            last_asserted_at=seen,
        )
        for n, u in enumerate(made)
        for idp in ((IDP_A, IDP_B) if (low + n) % 10 == 0 else (IDP_A,))
    )
    AccountLifecycle.objects.bulk_create(
        AccountLifecycle(user=u, state="active", source="saml", created_by="jit", since=seen) for u in made
    )


def _grants(made: list, memberships: list) -> None:
    now = timezone.now()
    expiring = now + timedelta(hours=8)
    grants = [
        Grant(user=u, idp_entity_id=IDP_A, group=g, expires_at=expiring if g.name == "group-00" else None)
        for u, g in memberships
        if g.name not in SCIM_GROUPS and u.pk % 3  # a third are manual memberships
    ]
    grants += [Grant(user=u, idp_entity_id=IDP_A, kind=GrantKind.STAFF) for u in made if u.is_staff]
    Grant.objects.bulk_create(grants)


# ----------------------------------------------------------------------------
# Measuring


def _kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS.
    Path("/proc/self/clear_refs").write_text("5")


def measure(run: Callable[[], int], trace_memory: bool) -> dict[str, float]:
    """Wall time, bytes written, peak RSS growth (MB), queries; and the traced peak (MB) in a second run."""
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    gc.collect()
    _reset_peak()
    before = _kib("VmRSS")
    with connection.execute_wrapper(count):
        t0 = time.perf_counter()
        size = run()
        wall = time.perf_counter() - t0
    figures = {"wall": wall, "bytes": size, "rss": (_kib("VmHWM") - before) / 1024, "queries": queries[0]}
    figures["traced"] = _traced(run) if trace_memory else -1.0
    return figures


def _traced(run: Callable[[], int]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def by_command(*args: str) -> Callable[[], int]:
    def run() -> int:
        with tempfile.TemporaryDirectory() as folder:
            target = os.path.join(folder, "export")
            call_command("saml_jit_export", *args, "--output", target, stdout=StringIO(), stderr=StringIO())
            return os.path.getsize(target)

    return run


def by_admin(client: Client, url: str) -> Callable[[], int]:
    def run() -> int:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        size = 0
        for chunk in response.streaming_content:
            size += len(chunk)
        response.close()
        return size

    return run


# ----------------------------------------------------------------------------
# The run


def run(events: int, accounts: int, trace_memory: bool = False) -> None:
    where = connection.vendor + ("" if connection.vendor != "sqlite" else f" {connection.settings_dict['NAME']}")
    print(f"\nEvidence exports ({where}; load average {os.getloadavg()[0]:.1f})\n")
    admin = get_user_model()._default_manager.create_superuser("bench-admin", "bench@example.org", "pw")
    client = Client()
    client.force_login(admin)
    done = 0
    for size in (events // 10, events):
        started = time.perf_counter()
        fill_events(done, size)
        done = size
        print(f"{size:,} events (filled in {time.perf_counter() - started:.0f} s)")
        _events(client, size, trace_memory)
    done = 0
    for size in (accounts // 10, accounts):
        started = time.perf_counter()
        fill_accounts(done, size)
        done = size
        print(f"{size:,} accounts (filled in {time.perf_counter() - started:.0f} s)")
        _snapshot(client, size, trace_memory)
    _pages(client)


def _events(client: Client, count: int, trace_memory: bool) -> None:
    for fmt in FORMATS:
        paths = {
            "command": by_command("events", "--format", fmt),
            "admin": by_admin(client, f"/admin/saml_jit/provisioningevent/?_export={fmt}"),
        }
        for path, runner in paths.items():
            _report(f"events {fmt:5} {path}", count, measure(runner, trace_memory))


def _snapshot(client: Client, count: int, trace_memory: bool) -> None:
    for fmt in FORMATS:
        paths = {
            "command": by_command("snapshot", "--format", fmt),
            "admin": by_admin(client, f"/admin/saml_jit/accesssnapshot/?_export={fmt}"),
        }
        for path, runner in paths.items():
            _report(f"snapshot {fmt:5} {path}", count, measure(runner, trace_memory), unit="accounts")


def _report(label: str, rows: int, f: dict[str, float], unit: str = "rows") -> None:
    traced = f"  traced peak {f['traced']:5.1f} MB" if f["traced"] >= 0 else ""
    print(
        f"  {label:24} {f['wall']:7.1f} s  {rows / f['wall']:9,.0f} {unit}/s  {f['bytes'] / 2**20:7.1f} MB written  "
        f"peak RSS growth {f['rss']:6.1f} MB  {f['queries']:5,.0f} queries{traced}"
    )


def _pages(client: Client) -> None:
    users = get_user_model()._default_manager.order_by("-pk").values_list("pk", flat=True)
    near_end = users[60]
    for label, url in (
        ("snapshot page, first", "/admin/saml_jit/accesssnapshot/"),
        ("snapshot page, last", f"/admin/saml_jit/accesssnapshot/?after={near_end}"),
        ("snapshot page, privileged", "/admin/saml_jit/accesssnapshot/?privileged=1"),
    ):
        client.get(url)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert client.get(url).status_code == 200
            times.append((time.perf_counter() - t0) * 1000)
        print(f"  {label:28} median {statistics.median(times):7.1f} ms")
