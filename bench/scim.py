"""SCIM at scale: filters and pages over many users, PATCH on a large group.

Fills the database with ``users`` accounts bound to one IdP (each with a SCIM
profile, as SCIM-created users have), then times real requests through the
SCIM view (Django's test client, in-process, bearer token checked):
``filter=userName eq``, ``externalId eq`` (in both subject modes),
``emails[type eq "work"].value eq``, one user by id, and pages of 100 at the
start, the middle and the end. Then a group of ``members`` members and one
of 100: PATCH adding one member, removing one (Entra ID's value form, Okta's
filter form), renaming, and a GET without members — the same cost for both
sizes is what "O(changed members)" means. Targets: filters under 50 ms,
pages under 200 ms (medians).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from saml_jit.models import FederatedIdentity, ScimGroup, ScimProfile
from saml_jit.scim import auth

IDP = "https://idp-a.example.org/idp/metadata"
CHUNK = 5_000
SAMPLE = 30
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: An unusable password (as ``set_unusable_password`` makes them), without hashing every account.
UNUSABLE = "!bench"
TARGETS = {"filter": 50.0, "page": 200.0}
WITHOUT_MEMBERS = {"excludedAttributes": "members"}


def name(i: int) -> str:
    return f"scim-{i:07d}"


def object_id(i: int) -> str:
    return f"00u{i:017d}"


def fill(total: int) -> None:
    users = get_user_model()
    for low in range(0, total, CHUNK):
        high = min(total, low + CHUNK)
        made = users._default_manager.bulk_create(
            users(
                username=name(i),
                email=f"{name(i)}@example.org",
                first_name="Bench",
                last_name=f"{i}",
                password=UNUSABLE,
            )
            for i in range(low, high)
        )
        if made and made[0].pk is None:  # backends that return no ids
            made = list(users._default_manager.filter(username__in=[u.username for u in made]).order_by("pk"))
        identities = FederatedIdentity.objects.bulk_create(
            FederatedIdentity(user=user, idp_entity_id=IDP, subject=object_id(low + k)) for k, user in enumerate(made)
        )
        if identities and identities[0].pk is None:
            identities = list(FederatedIdentity.objects.filter(user__in=made).order_by("user_id"))
        ScimProfile.objects.bulk_create(
            ScimProfile(identity=identity, external_id=identity.subject, display_name=f"Bench {identity.subject}")
            for identity in identities
        )
        print(f"  {high:,} users", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as a database in service has them


def timed(send: Callable[[int], Any], rounds: int = SAMPLE) -> tuple[float, float, float]:
    """Median and p95 ms, and queries per call, of ``send(i)`` for i in range(rounds)."""
    times, queries = [], []
    for i in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = send(i)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code in (200, 204), (response.status_code, response.content[:300])
        queries.append(len(captured))
    ordered = sorted(times)
    return statistics.median(times), ordered[round(0.95 * (len(ordered) - 1))], statistics.mean(queries)


def report(label: str, result: tuple[float, float, float], target: float | None = TARGETS["filter"]) -> None:
    median, p95, queries = result
    verdict = "" if target is None else ("  ok" if median < target else f"  OVER {target:.0f} ms")
    print(f"  {label:<52} median {median:7.1f} ms  p95 {p95:7.1f} ms  {queries:5.1f} queries{verdict}")


class Scim:
    def __init__(self) -> None:
        _, token = auth.create_client(f"bench-{time.monotonic_ns()}", IDP)
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.client.get(f"/scim/v2{path}", params or {})

    def patch(self, path: str, *operations: dict[str, Any]) -> Any:
        body = json.dumps({"schemas": [PATCH], "Operations": list(operations)})
        return self.client.patch(f"/scim/v2{path}", body, content_type="application/scim+json")


def spread(total: int) -> Iterator[int]:
    step = max(total // SAMPLE, 1)
    return iter(range(0, total, step))


def users_scenarios(total: int) -> None:
    Scim().get("/Users", {"count": "1"})  # builds the SCIM models once, before any timing
    picks = list(spread(total))[:SAMPLE]
    pk_of = dict(FederatedIdentity.objects.filter(idp_entity_id=IDP).values_list("subject", "user_id"))
    for mode in ("externalId", "userName"):
        with override_settings(SAML_JIT={"SCIM_SUBJECT_ATTRIBUTE": mode}):
            report(f"externalId eq ({mode} mode)", timed(filtering(Scim(), 'externalId eq "{}"', picks, object_id)))
    scim = Scim()
    report("userName eq (in capitals)", timed(filtering(scim, 'userName eq "{}"', picks, lambda i: name(i).upper())))
    email = 'emails[type eq "work"].value eq "{}@example.org"'
    report('emails[type eq "work"].value eq', timed(filtering(scim, email, picks, name)))
    report("GET /Users/{id}", timed(lambda i: scim.get(f"/Users/{pk_of[object_id(picks[i])]}")), TARGETS["filter"])
    for label, start in (("first", 1), ("middle", total // 2), ("last", max(total - 99, 1))):
        page = {"startIndex": str(start), "count": "100"}
        report(
            f"page of 100, {label} (startIndex={start:,})",
            timed(lambda i, p=page: scim.get("/Users", p), 10),
            TARGETS["page"],
        )


def filtering(scim: Scim, template: str, picks: list[int], value: Callable[[int], str]) -> Callable[[int], Any]:
    def send(i: int) -> Any:
        return scim.get("/Users", {"filter": template.format(value(picks[i]))})

    return send


def make_group(label: str, size: int) -> tuple[str, list[Any], list[Any]]:
    """A SCIM group with ``size`` members; its id, users outside it, its members."""
    group = Group.objects.create(name=f"bench {label}")
    ScimGroup.objects.create(group=group, idp_entity_id=IDP)
    pks = list(get_user_model()._default_manager.order_by("pk").values_list("pk", flat=True)[: size + 2 * SAMPLE])
    through = get_user_model().groups.through
    for low in range(0, size, CHUNK):
        through.objects.bulk_create(through(user_id=pk, group_id=group.pk) for pk in pks[low : min(size, low + CHUNK)])
    return str(group.pk), pks[size:], pks[:size]


def member_patches(scim: Scim, path: str, outside: list[Any], inside: list[Any]) -> dict[str, Callable[[int], Any]]:
    def add(i: int) -> Any:
        return scim.patch(path, {"op": "add", "path": "members", "value": [{"value": str(outside[i])}]})

    def remove_entra(i: int) -> Any:
        return scim.patch(path, {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": str(inside[i])}]})

    def remove_okta(i: int) -> Any:
        return scim.patch(path, {"op": "remove", "path": f'members[value eq "{inside[SAMPLE + i]}"]'})

    def rename(i: int) -> Any:
        return scim.patch(path, {"op": "Replace", "path": "displayName", "value": f"{path} {i}"})

    return {
        "PATCH add one member (204)": add,
        "PATCH remove one member, Entra form (204)": remove_entra,
        "PATCH remove one member, Okta form (204)": remove_okta,
        "PATCH rename (204)": rename,
    }


def group_scenarios(members: int) -> None:
    for size in (100, members):
        scim = Scim()
        group_id, outside, inside = make_group(str(size), size)
        path = f"/Groups/{group_id}"
        print(f"  group of {size:,} members:")
        for label, send in member_patches(scim, path, outside, inside).items():
            report(f"  {label}", timed(send))
        report("  GET ?excludedAttributes=members", timed(lambda i, c=scim, p=path: c.get(p, WITHOUT_MEMBERS)))
        report("  GET with every member", timed(lambda i, c=scim, p=path: c.get(p), 5), None)


def run(total: int, members: int) -> None:
    print(f"\nSCIM with {total:,} users and a group of {members:,} members ({connection.vendor}):\n")
    fill(total)
    with override_settings(ROOT_URLCONF="tests.urls"):
        users_scenarios(total)
        group_scenarios(min(members, total - 2 * SAMPLE))
