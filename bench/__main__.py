"""Benchmarks: ``python -m bench [logins|admin|users|all]``.

``logins``  saml_jit's ACS against stock djangosaml2's, same keys, same run:
            first logins, returning logins, returning logins with an
            encrypted assertion. Responses are minted before timing; each
            timed call is one POST through the real ACS view (Django's test
            client, in-process).
``admin``   the event changelist with many events (default 1,000,000).
``users``   first-login time with 0 … N (default 100,000) users already there.

``DATABASE_URL`` picks the database (SQLite in memory by default); a test
database is created and destroyed around the run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="logins", choices=["logins", "admin", "users", "all"])
    parser.add_argument("--logins", type=int, default=50, help="timed logins per scenario")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args(argv)
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from bench import admin_events, logins, many_users

        runners: dict[str, Callable[[], None]] = {
            "logins": lambda: logins.bench_logins(args.logins),
            "admin": lambda: admin_events.run(args.events),
            "users": lambda: many_users.run(args.users),
        }
        for what in runners if args.what == "all" else [args.what]:
            runners[what]()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
