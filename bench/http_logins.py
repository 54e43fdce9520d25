"""saml_jit's returning login over HTTP: gunicorn (one sync worker) on 127.0.0.1, one browser at a time.

The server is the benchmark site on the benchmark's own database; each
browser GETs the login view over HTTP (session cookie, outstanding
AuthnRequest), then the IdP's answer is minted, then the timed POSTs are
sent one after the other on a keep-alive connection. The figure is the
worker process's CPU time per login (``/proc/<pid>/stat``, so the client's
work is not counted), as logins per second per core, against the in-process
figure of the same run.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode, urlparse

from django.db import connection
from saml2 import samlp
from saml2.s_utils import decode_base64_and_inflate

from tests.federation import ACS_URL, IDP_A, SP_ENTITY_ID

HEADERS = {"Host": "testserver"}


def _database_url() -> str:
    """The benchmark database for the servers, with persistent connections (``CONN_MAX_AGE``, 60 s).

    As a deployment keeps them, and as the in-process figure does (one
    connection for the whole run): without it every request opens a
    PostgreSQL connection, about 10 ms of the worker's CPU — the figure would
    measure connecting, not logging in.
    """
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        # Several workers write one file: a writer waits up to 20 s for the lock rather than failing, and a
        # transaction takes the write lock when it begins (Django's IMMEDIATE mode), so that two transactions
        # that have both read cannot deadlock on upgrading (SQLite fails one at once, without waiting).
        return f"sqlite:///{os.path.abspath(db['NAME'])}?timeout=20&transaction_mode=IMMEDIATE&conn_max_age=60"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}?conn_max_age=60"


@dataclass
class Server:
    """A gunicorn master on 127.0.0.1 and what it wrote to stderr (drained by a thread, never blocking it)."""

    process: subprocess.Popen[str]
    port: int
    log: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _no_control_socket() -> list[str]:
    """Newer gunicorn opens one control socket per user: servers side by side would fight over it."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


_NO_CONTROL_SOCKET = _no_control_socket()


def _start_server(workers: int = 1, env: dict[str, str] | None = None) -> Server:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": _database_url(), **(env or {})}
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--timeout", "120"]
    command += ["--bind", "127.0.0.1:0", *_NO_CONTROL_SOCKET, "bench.wsgi:application"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)  # noqa: S603
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
        if match:
            server = Server(process, int(match.group(1)))
            threading.Thread(target=server.log.extend, args=(process.stderr,), daemon=True).start()
            return server
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("gunicorn did not start")


def _worker_pids(master: int, count: int = 1) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{master}/task/{master}/children") as handle:
            children = [int(pid) for pid in handle.read().split()]
        if len(children) >= count:
            return children
        time.sleep(0.1)
    raise SystemExit(f"gunicorn: fewer than {count} workers")


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of ``pid``; with ``children``, of the child processes it has waited for (cutime + cstime)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def _authn_request(response: http.client.HTTPResponse, body: bytes) -> str:
    """The AuthnRequest the login view sent, by either binding (as ``tests.conftest.Browser`` reads it)."""
    if response.status == 302:
        return decode_base64_and_inflate(parse_qs(urlparse(response.headers["Location"]).query)["SAMLRequest"][0])
    match = re.search(rb'name="SAMLRequest" value="([^"]+)"', body)
    if response.status != 200 or not match:
        raise SystemExit(f"HTTP login view: {response.status}")
    return base64.b64decode(match.group(1)).decode("utf-8")


class _Browser:
    """One browser: its cookies, over a keep-alive connection (its own, or the one a request is given)."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn, self.cookies = conn, SimpleCookie()

    def request(
        self, method: str, path: str, body: str | None = None, conn: http.client.HTTPConnection | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        headers = {**HEADERS, "Cookie": "; ".join(f"{k}={m.value}" for k, m in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = conn or self.conn
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        return response, content

    def answered(self, name_id: str) -> str:
        from bench.logins import _answer

        response, body = self.request("GET", "/saml2/login/?" + urlencode({"idp": IDP_A.entity_id, "next": "/"}))
        request_id = samlp.authn_request_from_string(_authn_request(response, body)).id
        return urlencode(_answer(request_id, SP_ENTITY_ID, ACS_URL, name_id, False))

    def post(self, body: str) -> float:
        start = time.perf_counter()
        response, _ = self.request("POST", "/saml2/acs/", body)
        if response.status != 302:
            raise SystemExit(f"HTTP login failed: {response.status}")
        return (time.perf_counter() - start) * 1000


def _logins(conn: http.client.HTTPConnection, names: list[str]) -> list[tuple[_Browser, str]]:
    prepared = []
    for name in names:
        browser = _Browser(conn)
        prepared.append((browser, browser.answered(name)))
    return prepared


def run(count: int, *, in_process_cpu_ms: float) -> None:
    server = _start_server()
    try:
        worker = _worker_pids(server.process.pid)[0]
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        names = [f"http-{time.monotonic_ns()}-{i:05d}" for i in range(count)]
        for browser, body in _logins(conn, names):  # first logins, untimed
            browser.post(body)
        prepared = _logins(conn, names)
        before = _cpu_seconds(worker)
        walls = [browser.post(body) for browser, body in prepared]
        cpu_ms = (_cpu_seconds(worker) - before) * 1000 / count
    finally:
        server.stop()
    print(f"\nsaml_jit returning login over HTTP (gunicorn, 1 worker, 127.0.0.1, {count} logins, concurrency 1):")
    print(f"  worker CPU per login {cpu_ms:6.2f} ms = {1000 / cpu_ms:6.1f} logins/s per core")
    print(f"  in-process (above)   {in_process_cpu_ms:6.2f} ms = {1000 / in_process_cpu_ms:6.1f} logins/s per core")
    wall = statistics.median(walls)
    print(f"  HTTP / in-process: {cpu_ms / in_process_cpu_ms:.2f}x CPU; client wall median {wall:.1f} ms")
