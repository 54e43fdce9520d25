"""Logins per second under load over HTTP: gunicorn with N sync workers, a loopback load generator.

One gunicorn server per product (``--workers`` sync workers on 127.0.0.1,
the benchmark site on the benchmark's own database, the product's own
authentication backends), all three started before the first measurement.
Per product, the users are provisioned by an untimed first login each; then,
for each concurrency level (the products in rotating order), every timed
login is prepared before the clock starts: a fresh browser (its own cookie
jar) GETs the product's login view over HTTP (session cookie, outstanding
AuthnRequest) and the IdP's signed answer is minted. The timed phase is C
client threads, each with its own http.client connection (gunicorn's sync
workers close it after every response; http.client opens it again), sending the
prepared POSTs as fast as answers come (allauth: the ACS POST and the
redirect to its finish view, both inside the timed login), until
``--logins`` are done or ``--seconds`` have passed, whichever comes first.

Figures: logins completed, errors (every non-success answer, printed),
logins/s (wall), the workers' CPU per login (utime + stime of every worker
from ``/proc``, so the client's work is not counted) as logins/s per core,
wall latency p50/p95 per login, and the ratio to the in-process figure of
the same run (:mod:`bench.logins`, returning logins, mean CPU per login).
"""

from __future__ import annotations

import http.client
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlparse

from django.db import connection
from saml2 import samlp

from bench import logins as in_process
from bench.http_logins import Server, _authn_request, _Browser, _cpu_seconds, _start_server, _worker_pids
from bench.logins import ALLAUTH_BASE, _answer
from tests.federation import ACS_URL, IDP_A, SP_ENTITY_ID

ALLAUTH_PATH = urlparse(ALLAUTH_BASE).path
SAML_LOGIN = "/saml2/login/?" + urlencode({"idp": IDP_A.entity_id, "next": "/"})


class Failed(Exception):
    """A non-success answer (or a broken connection): counted as an error, printed."""


#: A prepared login: given the sending thread's connection, runs the timed requests.
Login = Callable[[http.client.HTTPConnection], None]


def _expect(response: http.client.HTTPResponse, body: bytes, status: int, what: str) -> None:
    if response.status != status:
        raise Failed(f"{what}: {response.status} {body[:160]!r}")


def _djangosaml2_prepare(acs_path: str, what: str) -> Callable[[http.client.HTTPConnection, str], Login]:
    """saml_jit and stock: saml_jit's login view (as in-process), then the product's ACS."""

    def prepare(conn: http.client.HTTPConnection, name_id: str) -> Login:
        browser = _Browser(conn)
        response, body = browser.request("GET", SAML_LOGIN)
        request_id = samlp.authn_request_from_string(_authn_request(response, body)).id
        data = urlencode(_answer(request_id, SP_ENTITY_ID, ACS_URL, name_id, False))

        def login(conn: http.client.HTTPConnection) -> None:
            _expect(*browser.request("POST", acs_path, data, conn), 302, what)

        return login

    return prepare


def _allauth_prepare(conn: http.client.HTTPConnection, name_id: str) -> Login:
    browser = _Browser(conn)
    response, body = browser.request("GET", f"{ALLAUTH_PATH}/login/?" + urlencode({"next": "/"}))
    _expect(response, body, 302, "allauth login")
    request_id = samlp.authn_request_from_string(_authn_request(response, body)).id
    data = urlencode(_answer(request_id, f"{ALLAUTH_BASE}/metadata/", f"{ALLAUTH_BASE}/acs/", name_id, False))

    def login(conn: http.client.HTTPConnection) -> None:
        response, body = browser.request("POST", f"{ALLAUTH_PATH}/acs/", data, conn)
        _expect(response, body, 302, "allauth acs")
        finish = urlparse(response.headers["Location"])
        response, body = browser.request("GET", finish.path + (f"?{finish.query}" if finish.query else ""), None, conn)
        _expect(response, body, 302, "allauth finish_acs")
        if response.headers["Location"] != "/":
            raise Failed(f"allauth: login ended at {response.headers['Location']}")

    return login


@dataclass(frozen=True)
class Product:
    key: str
    peer: in_process.Product
    prepare: Callable[[http.client.HTTPConnection, str], Login]


PRODUCTS = {
    "saml_jit": Product("saml_jit", in_process.SAML_JIT, _djangosaml2_prepare("/saml2/acs/", "saml_jit acs")),
    "allauth": Product("allauth", in_process.ALLAUTH, _allauth_prepare),
    "stock": Product("stock", in_process.STOCK, _djangosaml2_prepare("/stock/acs/", "stock acs")),
}


@dataclass
class Level:
    """One product at one concurrency level."""

    done: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the workers' own and their waited-for children's (stock's xmlsec1)
    child_s: float = 0.0  # of which the children's
    latencies: list[float] = field(default_factory=list)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / self.done if self.done else float("nan")

    @property
    def per_core(self) -> float:
        return 1000 / self.cpu_ms if self.done and self.cpu_s else float("nan")

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _drive(port: int, jobs: list[Login], concurrency: int, seconds: float | None) -> Level:
    """Send ``jobs`` from ``concurrency`` threads until they are done or ``seconds`` have passed."""
    level, lock = Level(), threading.Lock()
    pending = iter(jobs)
    deadline = None if seconds is None else time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while deadline is None or time.monotonic() < deadline:
            with lock:
                job = next(pending, None)
            if job is None:
                break
            start = time.perf_counter()
            try:
                job(conn)
            except Failed as failure:
                with lock:
                    level.errors[str(failure)] += 1
                continue
            except (http.client.HTTPException, OSError) as error:
                conn.close()
                with lock:
                    level.errors[f"connection: {type(error).__name__}: {error}"] += 1
                continue
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                level.done += 1
                level.latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    level.wall_s = time.perf_counter() - start
    return level


def _workers_cpu(pids: list[int]) -> tuple[float, float]:
    """The workers' CPU seconds, their own and their children's (stock's xmlsec1 runs, waited for)."""
    return sum(_cpu_seconds(pid) for pid in pids), sum(_cpu_seconds(pid, children=True) for pid in pids)


def _measure(product: Product, server: Server, names: list[str], concurrency: int, seconds: float) -> Level:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    jobs = [product.prepare(conn, name) for name in names]  # untimed: login view GETs, answers minted
    conn.close()
    pids = _worker_pids(server.process.pid)
    own, children = _workers_cpu(pids)
    level = _drive(server.port, jobs, concurrency, seconds)
    own_after, children_after = _workers_cpu(pids)
    level.child_s = children_after - children
    level.cpu_s = own_after - own + level.child_s
    if sorted(_worker_pids(server.process.pid)) != sorted(pids):
        level.errors["gunicorn restarted a worker during the timed phase (CPU figure incomplete)"] += 1
    return level


def _in_process(products: list[Product], count: int) -> dict[str, float]:
    """Mean CPU ms of an in-process returning login per product (bench.logins, same run)."""
    results, _ = in_process.run_scenario(in_process.SCENARIOS[1], count)
    return {p.key: statistics.mean(results[p.peer.name].cpu) for p in products}


def _server_env(product: Product) -> dict[str, str]:
    return {"BENCH_AUTHENTICATION_BACKENDS": ",".join(product.peer.backends), "BENCH_SERVER_ERRORS": "1"}


def _fmt(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)  # NaN: nothing measured


def run(workers: int, levels: list[int], count: int, seconds: float, keys: list[str]) -> None:
    products = [PRODUCTS[key] for key in keys]
    load_before = os.getloadavg()[0]
    in_process_count = max(3, min(count, 50))
    print(f"  in-process returning logins ({in_process_count} per product) ...", file=sys.stderr)
    reference = _in_process(products, in_process_count)
    servers: dict[str, Server] = {}
    results: dict[tuple[int, str], Level] = {}
    provisioning: dict[str, Level] = {}
    run_id = str(time.monotonic_ns())
    try:
        with ThreadPoolExecutor(len(products)) as pool:  # started side by side: startup is not measured
            started = pool.map(lambda p: _start_server(workers, _server_env(p)), products)
            servers.update(zip([p.key for p in products], started, strict=True))
        for server in servers.values():
            _worker_pids(server.process.pid, workers)
        names = {p.key: [f"load-{p.key[:5]}-{run_id}-{i:05d}" for i in range(count)] for p in products}
        for product in products:
            print(
                f"  provisioning {count} users for {product.key} (untimed first logins, {workers} at a time) ...",
                file=sys.stderr,
            )
            server = servers[product.key]
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            jobs = [product.prepare(conn, name) for name in names[product.key]]
            conn.close()
            provisioning[product.key] = _drive(server.port, jobs, workers, None)  # warms every worker
        for i, concurrency in enumerate(levels):
            for product in products[i % len(products) :] + products[: i % len(products)]:
                print(f"  concurrency {concurrency}: {product.key} ...", file=sys.stderr)
                level = _measure(product, servers[product.key], names[product.key], concurrency, seconds)
                results[concurrency, product.key] = level
    finally:
        for server in servers.values():
            server.stop()
    print(f"  load average (1 min): {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    _report(workers, levels, count, seconds, products, reference, results, provisioning, servers)
    ours = [provisioning.get("saml_jit"), *(level for (_, key), level in results.items() if key == "saml_jit")]
    if any(level is not None and level.errors for level in ours):
        # The peers' errors are reported above (allauth's concurrent first logins may race on a username).
        raise SystemExit("saml_jit answered some logins with an error (see above)")


def _report(
    workers: int,
    levels: list[int],
    count: int,
    seconds: float,
    products: list[Product],
    reference: dict[str, float],
    results: dict[tuple[int, str], Level],
    provisioning: dict[str, Level],
    servers: dict[str, Server],
) -> None:
    database = connection.settings_dict["NAME"] if connection.vendor == "sqlite" else "PostgreSQL"
    print(
        f"\nReturning logins over HTTP: gunicorn, {workers} sync workers per product, 127.0.0.1; "
        f"machine: {os.cpu_count()} cores, shared with the load generator (this process's client threads); "
        f"{connection.vendor}: {database}.\nUp to {count} logins or {seconds:g} s per product and concurrency "
        "level, whichever comes first; SP-initiated, answers minted before timing; CPU ms per login is the "
        "workers' (utime + stime, plus the child processes they waited for: 'child ms', stock's xmlsec1), "
        "not the client's; /s/core = 1000 / CPU ms.\n"
    )
    header = (
        f"{'conc':>4} {'product':18} {'logins':>6} {'errors':>6} {'logins/s':>9} {'CPU ms':>7} "
        f"{'child ms':>8} {'/s/core':>8} {'p50 ms':>8} {'p95 ms':>8} {'vs in-proc':>10}"
    )
    print(header + "\n" + "-" * len(header))
    for concurrency in levels:
        for product in products:
            r = results[concurrency, product.key]
            ratio = r.per_core / (1000 / reference[product.key])
            print(
                f"{concurrency:>4} {product.peer.name:18} {r.done:>6} {sum(r.errors.values()):>6} "
                f"{_fmt(r.done / r.wall_s, '9.1f')} {_fmt(r.cpu_ms, '7.2f')} "
                f"{_fmt(r.child_s * 1000 / r.done if r.done else float('nan'), '8.2f')} {_fmt(r.per_core, '8.1f')} "
                f"{_fmt(r.percentile(0.5), '8.1f')} {_fmt(r.percentile(0.95), '8.1f')} {_fmt(ratio, '9.2f')}x"
            )
    print(
        "\nin-process returning login (bench.logins, same run; mean CPU per login, time.process_time: "
        "the test client's included, child processes not):"
    )
    for product in products:
        cpu = reference[product.key]
        print(f"  {product.peer.name:18} {cpu:7.2f} ms = {1000 / cpu:6.1f} logins/s per core")
    keys = [p.key for p in products]
    others = [key for key in ("allauth", "stock") if key in keys]
    if "saml_jit" in keys and others:
        print("\nlogins/s per core (workers' CPU), saml_jit / peer:")
        for concurrency in levels:
            ours = results[concurrency, "saml_jit"].per_core
            ratios = ", ".join(
                f"vs {PRODUCTS[key].peer.name} {_fmt(ours / results[concurrency, key].per_core, '.2f')}x"
                for key in others
            )
            print(f"  concurrency {concurrency:>2}: {ratios}")
    failures = [(f"provisioning {key}", level) for key, level in provisioning.items()]
    failures += [(f"concurrency {c} {key}", level) for (c, key), level in results.items()]
    errors = [(where, message, n) for where, level in failures for message, n in level.errors.items()]
    print(f"\nerrors: {sum(n for *_, n in errors)}")
    for where, message, n in errors:
        print(f"  {where}: {n} x {message}")
    for key, server in servers.items():  # what the servers logged (saml_jit and Django errors, gunicorn's own)
        logged = Counter(
            re.sub(r"ref=\w+ ", "", line.rstrip().removeprefix("BENCH-LOG "))
            for line in server.log
            if line.startswith("BENCH-LOG ") or "[ERROR]" in line or "[CRITICAL]" in line
        )
        for line, n in logged.items():
            print(f"  server log ({key}): {n} x {line}")
