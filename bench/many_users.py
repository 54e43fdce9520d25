"""First-login time must not grow with the number of users already there."""

from __future__ import annotations

import statistics
import sys

from django.contrib.auth import get_user_model
from django.db import connection

from bench import floor
from bench.logins import SAML_JIT
from saml_jit.models import FederatedIdentity

BATCH = 20_000
SAMPLE = 30


def add_users(start: int, stop: int) -> None:
    users = get_user_model()
    for low in range(start, stop, BATCH):
        high = min(stop, low + BATCH)
        created = users._default_manager.bulk_create(
            users(username=f"bulk-{i:07d}", email=f"bulk-{i:07d}@example.org") for i in range(low, high)
        )
        if created and created[0].pk is None:  # backends that return no ids
            created = list(users._default_manager.filter(username__in=[u.username for u in created]))
        FederatedIdentity.objects.bulk_create(
            FederatedIdentity(user=user, idp_entity_id="https://idp-a.example.org/idp/metadata", subject=user.username)
            for user in created
        )
        print(f"  {high:,} users", file=sys.stderr, end="\r")
    print(file=sys.stderr)


def run(total: int) -> None:
    print(f"\nFirst logins with many users already there ({connection.vendor}):\n")
    existing = 0
    for target in sorted({0, total // 10, total}):
        add_users(existing, target)
        existing = target
        logins = [SAML_JIT.prepare(f"new-at-{target}-{i:04d}", False) for i in range(SAMPLE)]
        times = [floor.timed(login)[1] for login in logins]
        print(f"  {target:>9,} users: median {statistics.median(times):7.2f} ms per first login ({SAMPLE} logins)")
