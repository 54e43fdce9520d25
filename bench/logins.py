"""Login benchmarks: saml_jit's ACS against stock djangosaml2's, same keys, same run.

Three scenarios (first logins, returning logins, returning logins with an
encrypted assertion) for each product. Responses are minted before timing;
each timed call is one POST through the real ACS view (Django's test client,
in-process). Run through ``python -m bench logins``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from tests.conftest import Browser
from tests.federation import SP_CERT

SAML_JIT_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "saml_jit.backends.SamlJitBackend"]
STOCK_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "djangosaml2.backends.Saml2Backend"]


@dataclass(frozen=True)
class Product:
    name: str
    acs_path: str
    backends: list[str]


SAML_JIT = Product("saml_jit", "/saml2/acs/", SAML_JIT_BACKENDS)
STOCK = Product("stock djangosaml2", "/stock/acs/", STOCK_BACKENDS)


@dataclass
class Result:
    scenario: str
    product: str
    times_ms: list[float]
    queries: float
    subprocesses: float

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def per_second(self) -> float:
        return 1000.0 / self.median


@contextmanager
def count_subprocesses() -> Iterator[list[int]]:
    counter = [0]
    original = subprocess.Popen.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        counter[0] += 1
        original(self, *args, **kwargs)

    subprocess.Popen.__init__ = counting  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]


def mint(prefix: str, count: int, *, encrypted: bool) -> list[tuple[Client, dict[str, str]]]:
    """One fresh browser (with its outstanding AuthnRequest) and signed response per login."""
    logins = []
    for i in range(count):
        browser = Browser(Client())
        data = browser.answered_login(f"{prefix}-{i:06d}", encrypt_for_cert=SP_CERT if encrypted else None)
        logins.append((browser.client, data))
    return logins


def post_all(product: Product, logins: list[tuple[Client, dict[str, str]]]) -> list[float]:
    times = []
    for client, data in logins:
        start = time.perf_counter()
        response = client.post(product.acs_path, data)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 302:
            raise SystemExit(f"{product.name}: login failed with {response.status_code}: {response.content[:300]!r}")
    return times


def scenario(name: str, product: Product, count: int, *, returning: bool, encrypted: bool) -> Result:
    prefix = f"{product.name[:5]}-{name[:3]}-{time.monotonic_ns()}"
    with override_settings(AUTHENTICATION_BACKENDS=product.backends):
        if returning:
            post_all(product, mint(prefix, count + 3, encrypted=False))  # first logins, untimed
        warm = mint(prefix, 3, encrypted=encrypted)
        with CaptureQueriesContext(connection) as queries, count_subprocesses() as spawned:
            post_all(product, warm)
        # Read now: the next request's request_started resets the query log.
        query_count = len(queries.captured_queries)
        logins = (
            mint(prefix, count, encrypted=encrypted) if returning else mint(prefix + "-t", count, encrypted=encrypted)
        )
        times = post_all(product, logins)
    return Result(name, product.name, times, query_count / 3, spawned[0] / 3)


def bench_logins(count: int) -> None:
    results: list[Result] = []
    for name, returning, encrypted in (
        ("first login", False, False),
        ("returning login", True, False),
        ("returning login, encrypted assertion", True, True),
    ):
        for product in (STOCK, SAML_JIT):
            results.append(scenario(name, product, count, returning=returning, encrypted=encrypted))
            print(f"  done: {name} / {product.name}", file=sys.stderr)
    print(f"\nLogins through the ACS view ({count} per scenario, {connection.vendor}):\n")
    header = (
        f"{'scenario':38} {'product':18} {'median ms':>9} {'p95 ms':>8} {'logins/s':>9} {'queries':>7} {'subproc':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.scenario:38} {r.product:18} {r.median:9.2f} {r.p95:8.2f} {r.per_second:9.1f} "
            f"{r.queries:7.1f} {r.subprocesses:7.1f}"
        )
    print("\nthroughput ratio saml_jit / stock (median):")
    for i in range(0, len(results), 2):
        stock, ours = results[i], results[i + 1]
        print(f"  {stock.scenario:38} {stock.median / ours.median:6.1f}x")
