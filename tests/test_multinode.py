"""Two app servers on one PostgreSQL behave as one.

Starts two gunicorn processes (``tests.wsgi``) on two loopback ports, both
pointed at the test database pytest-django created, and drives them like a
browser behind a load balancer would: plain HTTP with ``Host: testserver``
(so the ACS URL and Destination are ``http://testserver/saml2/acs/``) and one
cookie jar per browser, sent to whichever node gets the request. Sessions
live in the database, so they are shared. Skipped unless ``DATABASE_URL``
points at PostgreSQL; the servers are terminated in ``finally`` and every
wait is bounded.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from saml2 import samlp
from saml2.s_utils import decode_base64_and_inflate

from saml_jit.models import EventKind, FederatedIdentity, ProvisioningEvent
from tests.federation import ACS_URL, FRIENDLY_NAMES, IDP_A, SP_ENTITY_ID
from tests.test_security import attrs

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"),
    pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="needs gunicorn (requirements.txt)"),
]

User = get_user_model()
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    s = connection.settings_dict
    user = urllib.parse.quote(s.get("USER") or "")
    password = f":{urllib.parse.quote(s['PASSWORD'])}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


class Node:
    """One gunicorn process serving tests.wsgi."""

    def __init__(self, name: str, logs: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.log = logs / f"{name}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": _database_url(),
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "tests.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--timeout",
                "60",
                "--graceful-timeout",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                status, _, _ = HttpBrowser().request(self, "GET", "/")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in time: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class HttpBrowser:
    """A browser: one cookie jar, whichever node it talks to (as behind a load balancer)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, node: Node, method: str, path: str, data: dict | None = None) -> tuple[int, dict, bytes]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(node.base + path, data=body, method=method)
        request.add_header("Host", "testserver")
        if body is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as response:
                status, headers, content = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, content = error.code, error.headers, error.read()
        for header in headers.get_all("Set-Cookie") or []:
            for morsel in SimpleCookie(header).values():
                self.cookies[morsel.key] = morsel.value
        return status, dict(headers), content

    def start_login(self, node: Node) -> str:
        status, headers, content = self.request(
            node, "GET", f"/saml2/login/?idp={urllib.parse.quote(IDP_A.entity_id)}&next=/"
        )
        if status == 302:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(headers["Location"]).query)
            xml = decode_base64_and_inflate(query["SAMLRequest"][0])
        else:
            assert status == 200, content[:500]
            xml = base64.b64decode(re.search(rb'name="SAMLRequest" value="([^"]+)"', content).group(1))
        return samlp.authn_request_from_string(xml).id

    def login(self, start: Node, acs: Node, assertion_id: str, **kwargs) -> tuple[int, bytes]:
        request_id = self.start_login(start)
        data = IDP_A.post_data(
            sp_entity_id=SP_ENTITY_ID,
            acs_url=ACS_URL,
            friendly_names=FRIENDLY_NAMES,
            in_response_to=request_id,
            assertion_id=assertion_id,
            **kwargs,
        )
        status, _, content = self.request(acs, "POST", "/saml2/acs/", data)
        return status, content

    def whoami(self, node: Node) -> str | None:
        """The signed-in user's id, read from the shared session table."""
        from django.contrib.sessions.backends.db import SessionStore

        key = self.cookies.get("sessionid")
        return SessionStore(session_key=key).get("_auth_user_id") if key else None


@contextmanager
def two_nodes():
    logs = Path(tempfile.mkdtemp(prefix="saml_jit_nodes_"))
    nodes = [Node("node-a", logs), Node("node-b", logs)]
    try:
        deadline = time.monotonic() + 30
        for node in nodes:
            node.wait_ready(deadline)
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(logs, ignore_errors=True)


def _reason(content: bytes) -> str:
    match = re.search(rb"<code>([a-z_]+)</code>", content)
    return match.group(1).decode() if match else ""


def test_two_nodes_share_replay_store_and_provision_once(transactional_db):
    with two_nodes() as (node_a, node_b):
        # 1. A response accepted by node A is a replay on node B.
        assertion_id = f"_multinode-{uuid.uuid4().hex}"
        alice = HttpBrowser()
        status, content = alice.login(node_a, node_a, assertion_id, name_id="subject-alice-0001", attributes=attrs())
        assert status == 302, content[:2000]
        user = User.objects.get()
        assert alice.whoami(node_b) == str(user.pk)  # the session is shared too

        mallory = HttpBrowser()
        status, content = mallory.login(node_b, node_b, assertion_id, name_id="subject-alice-0001", attributes=attrs())
        assert (status, _reason(content)) == (400, "replay"), content[:2000]
        assert mallory.whoami(node_b) is None
        assert list(ProvisioningEvent.objects.values_list("kind", "reason_code").order_by("id")) == [
            (EventKind.CREATED, ""),
            (EventKind.REJECTED, "replay"),
        ]

        # 2. First logins of one new identity, spread over both nodes at once, make one user.
        browsers = [HttpBrowser() for _ in range(8)]
        requests = []
        for index, browser in enumerate(browsers):
            node = (node_a, node_b)[index % 2]
            requests.append((browser, node, browser.start_login(node)))
        barrier = threading.Barrier(len(browsers))
        results: list = [None] * len(browsers)

        def post(index: int) -> None:
            browser, node, request_id = requests[index]
            data = IDP_A.post_data(
                sp_entity_id=SP_ENTITY_ID,
                acs_url=ACS_URL,
                friendly_names=FRIENDLY_NAMES,
                in_response_to=request_id,
                assertion_id=f"_multinode-{uuid.uuid4().hex}",
                name_id="subject-dave-0004",
                attributes=attrs(uid="dave", email="dave@example.org", given_name="Dave"),
            )
            try:
                barrier.wait(timeout=TIMEOUT)
                status, _, content = browser.request(node, "POST", "/saml2/acs/", data)
                results[index] = (status, _reason(content))
            except BaseException as exc:
                results[index] = (0, repr(exc))

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(browsers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert results == [(302, "")] * len(browsers), results
        dave = FederatedIdentity.objects.get(subject="subject-dave-0004").user
        assert User.objects.count() == 2
        assert {browser.whoami(node_a) for browser in browsers} == {str(dave.pk)}
        kinds = Counter(ProvisioningEvent.objects.filter(subject="subject-dave-0004").values_list("kind", flat=True))
        assert kinds[EventKind.CREATED] == 1 and sum(kinds.values()) == len(browsers), kinds
        for node in (node_a, node_b):
            assert " 500 " not in node.log.read_text() and "Traceback" not in node.log.read_text(), node.log.read_text()
