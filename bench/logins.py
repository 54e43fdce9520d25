"""Login benchmarks: saml_jit's ACS against stock djangosaml2's and django-allauth's SAML provider.

One run, the three products interleaved login by login (the order rotates
every round), same IdP key and response shape (RSA-2048, RSA-SHA256, the
Response and the Assertion signed), SP-initiated, each verifying the
signatures, audience, destination, recipient, validity and InResponseTo.
Three scenarios: first logins, returning logins, returning logins with an
encrypted assertion. Responses are minted before timing; each timed login is
the real requests through the real views (Django's test client, in-process):
one POST for saml_jit and stock, the POST and the redirect it answers with
for allauth (its ACS stores the POST and finishes on the next request).

Figures are CPU time per login (``time.process_time``: the machine is shared,
wall time is noisy) and wall time, plus the floor (:mod:`bench.floor`) timed
in the same rounds. Run through ``python -m bench logins`` on a file-backed
SQLite database (the default) or ``DATABASE_URL=postgres://…``.
"""

from __future__ import annotations

import base64
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from saml2 import samlp

from bench import floor, responses
from tests.conftest import Browser, person
from tests.federation import ACS_URL, IDP_A, SP_CERT, SP_ENTITY_ID

ModelBackend = "django.contrib.auth.backends.ModelBackend"
Login = Callable[[], None]


@dataclass(frozen=True)
class Product:
    name: str
    backends: list[str]
    #: (name_id, encrypted) -> the prepared, not yet timed, login.
    prepare: Callable[[str, bool], Login]


def _expect(response, status: int, what: str) -> None:  # type: ignore[no-untyped-def]
    if response.status_code != status:
        raise SystemExit(f"{what}: {response.status_code}: {response.content[:300]!r}")


def _answer(request_id: str, sp_entity_id: str, acs_url: str, name_id: str, encrypted: bool) -> dict[str, str]:
    """IdP A's answer: same key, algorithms and attributes for every product."""
    return responses.post_data(
        SP_CERT if encrypted else None,
        sp_entity_id=sp_entity_id,
        acs_url=acs_url,
        name_id=name_id,
        attributes=person(email=f"{name_id}@example.org", uid=[name_id]),
        in_response_to=request_id,
    )


def _djangosaml2_login(acs_path: str, what: str) -> Callable[[str, bool], Login]:
    def prepare(name_id: str, encrypted: bool) -> Login:
        browser = Browser(Client())
        data = _answer(browser.start_login(IDP_A), SP_ENTITY_ID, ACS_URL, name_id, encrypted)
        return lambda: _expect(browser.client.post(acs_path, data), 302, what)

    return prepare


ALLAUTH_BASE = f"http://testserver/accounts/saml/{getattr(settings, 'ALLAUTH_ORG', 'bench')}"


def _allauth_request_id(client: Client) -> str:
    response = client.get(f"{ALLAUTH_BASE}/login/", {"next": "/"})
    _expect(response, 302, "allauth login")
    query = parse_qs(urlparse(response["Location"]).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return samlp.authn_request_from_string(xml).id


def _allauth_login(name_id: str, encrypted: bool) -> Login:
    client = Client(HTTP_HOST="testserver")  # python3-saml reads the Host header
    request_id = _allauth_request_id(client)
    data = _answer(request_id, f"{ALLAUTH_BASE}/metadata/", f"{ALLAUTH_BASE}/acs/", name_id, encrypted)

    def login() -> None:
        response = client.post(f"{ALLAUTH_BASE}/acs/", data)
        _expect(response, 302, "allauth acs")
        finished = client.get(response["Location"])
        _expect(finished, 302, "allauth finish_acs")
        if finished["Location"] != "/":
            raise SystemExit(f"allauth: login ended at {finished['Location']}")

    return login


STOCK = Product(
    "stock djangosaml2", [ModelBackend, "djangosaml2.backends.Saml2Backend"], _djangosaml2_login("/stock/acs/", "stock")
)
ALLAUTH = Product(
    "django-allauth", [ModelBackend, "allauth.account.auth_backends.AuthenticationBackend"], _allauth_login
)
SAML_JIT = Product(
    "saml_jit", [ModelBackend, "saml_jit.backends.SamlJitBackend"], _djangosaml2_login("/saml2/acs/", "saml_jit")
)
PRODUCTS = (STOCK, ALLAUTH, SAML_JIT)


@dataclass
class Series:
    """CPU and wall milliseconds of the timed logins of one product in one scenario."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    queries: float = 0.0

    def add(self, cpu: float, wall: float) -> None:
        self.cpu.append(cpu)
        self.wall.append(wall)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu)

    @property
    def wall_ms(self) -> float:
        return statistics.median(self.wall)

    @property
    def wall_p95(self) -> float:
        ordered = sorted(self.wall)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Scenario:
    name: str
    returning: bool
    encrypted: bool


SCENARIOS = (
    Scenario("first login", False, False),
    Scenario("returning login", True, False),
    Scenario("returning, encrypted assertion", True, True),
)
FLOOR_PARTS = (
    "django POST + auth.login",
    "signatures (xmlsec, one tree)",
    "schema (libxml2)",
    "identity + event writes",
)


def _run(product: Product, login: Login) -> tuple[float, float]:
    with override_settings(AUTHENTICATION_BACKENDS=product.backends):
        return floor.timed(login)


def _count_queries(product: Product, logins: list[Login]) -> float:
    with override_settings(AUTHENTICATION_BACKENDS=product.backends):
        total = 0
        for login in logins:
            with CaptureQueriesContext(connection) as queries:
                login()
            total += len(queries.captured_queries)
    return total / len(logins)


def _names(product: Product, scenario: Scenario, count: int, run: str) -> list[str]:
    return [f"{product.name[:5]}-{scenario.name[:3]}-{run}-{i:05d}" for i in range(count)]


def _provision(product: Product, names: list[str]) -> None:
    """Untimed first logins, for the returning scenarios."""
    with override_settings(AUTHENTICATION_BACKENDS=product.backends):
        for name in names:
            product.prepare(name, False)()


def _prepare_floor(scenario: Scenario, names: list[str], run: str) -> list[list[Login]]:
    """For each login, the floor's four timed parts (users prepared, untimed)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    users = [f"floor-{run}-{i:05d}" for i in range(len(names))]
    User.objects.bulk_create([User(username=u) for u in users])
    subjects = [f"floorid-{scenario.name[:3]}-{run}-{i:05d}" for i in range(len(names))]
    if scenario.returning:
        for subject in subjects:
            floor.write_first(subject)
    writer = floor.write_returning if scenario.returning else floor.write_first
    parts = []
    for user, subject, name in zip(users, subjects, names, strict=True):
        data = _answer(Browser(Client()).start_login(IDP_A), SP_ENTITY_ID, ACS_URL, name, scenario.encrypted)
        parts.append(
            [
                floor.django_login(user),
                lambda data=data: floor.verify_signatures(data),  # type: ignore[misc]
                lambda data=data: floor.validate_schema(data),  # type: ignore[misc]
                lambda subject=subject: writer(subject),  # type: ignore[misc]
            ]
        )
    return parts


def run_scenario(scenario: Scenario, count: int) -> tuple[dict[str, Series], list[Series]]:
    run = str(time.monotonic_ns())
    results = {product.name: Series() for product in PRODUCTS}
    prepared: dict[str, list[Login]] = {}
    for product in PRODUCTS:
        names = _names(product, scenario, count + 3, run)
        if scenario.returning:
            _provision(product, names)
        logins = [
            product.prepare(name if scenario.returning else name + "-w", scenario.encrypted) for name in names[:3]
        ]
        results[product.name].queries = _count_queries(product, logins)
        prepared[product.name] = [product.prepare(name, scenario.encrypted) for name in names[3:]]
    floor_parts = _prepare_floor(scenario, names[3:], run)
    floor_series = [Series() for _ in FLOOR_PARTS]
    for i in range(count):
        order = PRODUCTS[i % 3 :] + PRODUCTS[: i % 3]
        for product in order:
            results[product.name].add(*_run(product, prepared[product.name][i]))
        for series, part in zip(floor_series, floor_parts[i], strict=True):
            series.add(*floor.timed(part))
    return results, floor_series


def _print_scenario(scenario: Scenario, results: dict[str, Series], floor_series: list[Series]) -> None:
    for product in PRODUCTS:
        r = results[product.name]
        print(
            f"{scenario.name:32} {product.name:18} {r.cpu_ms:8.2f} {r.wall_ms:8.2f} {r.wall_p95:8.2f} "
            f"{1000 / r.cpu_ms:9.1f} {r.queries:7.1f}"
        )
    for part, series in zip(FLOOR_PARTS, floor_series, strict=True):
        print(f"{'':32} {'  floor: ' + part:36.36} {series.cpu_ms:6.2f} {series.wall_ms:8.2f}")
    total_cpu = sum(s.cpu_ms for s in floor_series)
    total_wall = sum(s.wall_ms for s in floor_series)
    print(f"{'':32} {'floor (sum)':18} {total_cpu:8.2f} {total_wall:8.2f} {'':8} {1000 / total_cpu:9.1f}")


def _print_ratios(all_results: list[tuple[Scenario, dict[str, Series], list[Series]]]) -> None:
    print("\nthroughput ratios (CPU per login, medians; >1: saml_jit does more logins per core):")
    print(f"  {'scenario':32} {'vs stock':>9} {'vs allauth':>11} {'saml_jit / floor':>17}")
    for scenario, results, floor_series in all_results:
        ours = results[SAML_JIT.name].cpu_ms
        floor_cpu = sum(s.cpu_ms for s in floor_series)
        print(
            f"  {scenario.name:32} {results[STOCK.name].cpu_ms / ours:8.1f}x "
            f"{results[ALLAUTH.name].cpu_ms / ours:10.1f}x {ours / floor_cpu:16.2f}x"
        )


def bench_logins(count: int) -> list[tuple[Scenario, dict[str, Series], list[Series]]]:
    all_results = []
    for scenario in SCENARIOS:
        results, floor_series = run_scenario(scenario, count)
        all_results.append((scenario, results, floor_series))
        print(f"  done: {scenario.name}", file=sys.stderr)
    database = connection.settings_dict["NAME"] if connection.vendor == "sqlite" else "PostgreSQL"
    print(f"\nLogins through the ACS views ({count} per scenario, interleaved; {connection.vendor}: {database}):\n")
    header = f"{'scenario':32} {'product':18} {'CPU ms':>8} {'wall ms':>8} {'p95 ms':>8} {'logins/s':>9} {'queries':>7}"
    print(header + "\n" + "-" * len(header))
    for scenario, results, floor_series in all_results:
        _print_scenario(scenario, results, floor_series)
    _print_ratios(all_results)
    return all_results


def main(count: int, *, http: bool = False) -> None:
    results = bench_logins(count)
    if http:
        from bench import http_logins

        in_process = results[1][1][SAML_JIT.name].cpu_ms
        http_logins.run(count, in_process_cpu_ms=in_process)
