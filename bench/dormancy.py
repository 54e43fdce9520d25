"""The dormancy sweep over many accounts: wall time, queries per batch, peak memory growth.

Fills the database with ``accounts`` JIT accounts whose only identity was
last asserted 400 days ago (all dormant at ``DORMANT_AFTER = 90``), plus
``sessions`` live database sessions — half of them of dormant accounts (the
sweep ends them), half of fresh accounts it must leave alone — then runs
``saml_jit_lifecycle sweep`` once and checks every account was suspended
with one event each. Memory is the growth of the process's peak resident
set during the sweep (``VmHWM``, reset after filling) and, with
``--trace-memory``, the peak of Python allocations (``tracemalloc``; freed
memory the fill left behind can hide growth from the RSS figure, not from
this one). The targets are 60 s and 50 MB.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from saml_jit import lifecycle as rules
from saml_jit.models import AccountLifecycle, EventKind, FederatedIdentity, ProvisioningEvent
from saml_jit.provisioning import dormancy

IDP = "https://idp-a.example.org/idp/metadata"
CHUNK = 5_000
TARGET_SECONDS = 60
TARGET_MB = 50
STATUS = Path("/proc/self/status")
#: An unusable password (as ``set_unusable_password`` makes them), without hashing 100,000 times.
UNUSABLE = "!bench"


def fill(accounts: int, sessions: int) -> None:
    """``accounts`` dormant accounts and ``sessions // 2`` fresh ones, each fresh one and as many dormant signed in."""
    old = timezone.now() - timedelta(days=400)
    fresh = sessions // 2
    for low in range(0, accounts + fresh, CHUNK):
        high = min(accounts + fresh, low + CHUNK)
        _add(low, high, accounts, old)
        print(f"  {high:,} accounts", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    users = get_user_model()._default_manager.order_by("pk")
    owners = list(users.values_list("pk", flat=True)[: sessions - fresh]) + list(
        users.filter(username__startswith="fresh-").values_list("pk", flat=True)
    )
    store = SessionStore()
    until = timezone.now() + timedelta(days=14)
    for low in range(0, len(owners), CHUNK):
        Session.objects.bulk_create(
            Session(session_key=f"bench{pk:035d}", session_data=store.encode({SESSION_KEY: str(pk)}), expire_date=until)
            for pk in owners[low : low + CHUNK]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as a database in service has them


def _add(low: int, high: int, dormant_count: int, old: datetime) -> None:
    users = get_user_model()
    now = timezone.now()
    made = users._default_manager.bulk_create(
        users(username=_name(i, dormant_count), email=f"{_name(i, dormant_count)}@example.org", password=UNUSABLE)
        for i in range(low, high)
    )
    if made and made[0].pk is None:  # backends that return no ids
        made = list(users._default_manager.filter(username__in=[u.username for u in made]))
    seens = [old if user.username.startswith("dormant-") else now for user in made]
    FederatedIdentity.objects.bulk_create(
        FederatedIdentity(
            user=u, idp_entity_id=IDP, subject=u.username, bound_at=seen, first_asserted_at=seen, last_asserted_at=seen
        )
        for u, seen in zip(made, seens, strict=True)
    )
    AccountLifecycle.objects.bulk_create(
        AccountLifecycle(user=u, state=rules.ACTIVE, source=rules.SAML, created_by="jit", since=seen)
        for u, seen in zip(made, seens, strict=True)
    )


def _name(i: int, dormant_count: int) -> str:
    return f"dormant-{i:07d}" if i < dormant_count else f"fresh-{i:07d}"


def _kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS.
    Path("/proc/self/clear_refs").write_text("5")


def _count_queries(counter: list[int]):
    def wrapper(execute, sql, params, many, context):
        counter[0] += 1
        return execute(sql, params, many, context)

    return wrapper


def run(accounts: int, sessions: int, trace_memory: bool = False) -> None:
    start = time.perf_counter()
    fill(accounts, sessions)
    where = connection.vendor + ("" if connection.vendor != "sqlite" else f" {connection.settings_dict['NAME']}")
    print(f"\nDormancy sweep, {accounts:,} dormant accounts, {sessions:,} sessions ({where}; filled in "
          f"{time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f})\n")  # fmt: skip
    figures = _sweep(trace_memory)
    _check(accounts, sessions)
    _report(accounts, figures)


def _sweep(trace_memory: bool) -> dict[str, float]:
    """Run the sweep once; wall and CPU seconds, peak RSS growth (MB), queries, and the traced Python peak (MB)."""
    queries = [0]
    _reset_peak()
    rss_before = _kib("VmRSS")
    if trace_memory:
        tracemalloc.start()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = _server_cpu()
    with (
        override_settings(SAML_JIT={"IDPS": {IDP: {"DORMANT_AFTER": 90}}}),
        connection.execute_wrapper(_count_queries(queries)),
    ):
        t0 = time.perf_counter()
        call_command("saml_jit_lifecycle", "sweep", stdout=StringIO())
        elapsed = time.perf_counter() - t0
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    server = _server_cpu() - server_before
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace_memory else -1.0
    tracemalloc.stop()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    rss = (_kib("VmHWM") - rss_before) / 1024
    return {"wall": elapsed, "cpu": cpu, "server": server, "rss": rss, "queries": queries[0], "traced": traced}


def _server_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend (on this machine); 0 elsewhere."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # the server runs elsewhere
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _report(accounts: int, f: dict[str, float]) -> None:
    batches = -(-accounts // dormancy.BATCH)
    rate = accounts / f["wall"]
    print(f"  wall time       {f['wall']:7.1f} s   (target < {TARGET_SECONDS} s)  {rate:,.0f} accounts/s")
    print(f"  CPU, this process {f['cpu']:5.1f} s")
    if f["server"]:
        print(f"  CPU, PostgreSQL backend {f['server']:4.1f} s")
    print(f"  peak RSS growth {f['rss']:7.1f} MB  (target < {TARGET_MB} MB)")
    if f["traced"] >= 0:
        print(f"  traced Python peak {f['traced']:4.1f} MB  (tracemalloc: slows the run, time not comparable)")
    print(f"  queries         {f['queries']:7,.0f}     {f['queries'] / batches:.1f} per batch of {dormancy.BATCH}")
    ok = f["wall"] < TARGET_SECONDS and f["rss"] < TARGET_MB and f["traced"] < TARGET_MB
    print(f"  {'within targets' if ok else 'OVER TARGET'}")


def _check(accounts: int, sessions: int) -> None:
    suspended = AccountLifecycle.objects.filter(state=rules.SUSPENDED, source=rules.DORMANCY).count()
    events = ProvisioningEvent.objects.filter(kind=EventKind.SUSPENDED, source="dormancy").count()
    left = Session.objects.count()
    assert suspended == accounts == events, (suspended, events)
    assert left == sessions // 2, left  # the fresh accounts' sessions only
