"""Benchmarks: ``python -m bench [logins|load|admin|users|hostile|dormancy|all]``.

``logins``  saml_jit's ACS against stock djangosaml2's and django-allauth's
            SAML provider, interleaved in one run, with the floor: first
            logins, returning logins, returning logins with an encrypted
            assertion; CPU and wall per login, queries. On SQLite the test
            database is a file (a temporary one unless ``--db-file``), never
            memory. ``--http`` adds saml_jit behind gunicorn (one worker).
``load``    the three products behind gunicorn (``--workers``, default one per
            core), a loopback load generator at ``--concurrency`` 1,4,16:
            returning logins, up to ``--logins`` (default 200) or ``--seconds``
            (default 20) per product and level; logins/s, workers' CPU per
            login, logins/s per core, p50/p95, against the in-process figure.
            On SQLite a file (as for ``logins``).
``admin``   the event changelist with many events (default 1,000,000).
``users``   first-login time with 0 … N (default 100,000) users already there.
``hostile`` CPU time of hostile responses (inflated past and up to the work
            bounds, an encrypted inflated assertion) against a normal login,
            with the bounds and without, on both crypto backends.
``dormancy`` the dormancy sweep over N (default 100,000) dormant accounts:
            wall time, queries per batch, peak memory growth.
``exports`` evidence exports (events, access snapshot; CSV and JSON lines; command
            and admin) at a tenth of ``--events``/``--accounts`` and at all of them.
``scim``    SCIM filters and pages over ``--users`` (default 100,000) users, and
            group PATCH on a group of ``--members`` (default 10,000) members.
``dashboard`` the admin dashboard with ``--events`` (default 1,000,000) over
            95 days and ``--users`` (default 100,000) accounts: first render
            (rolling the days up) and later renders, queries, query plans.

``DATABASE_URL`` picks the database (SQLite in memory by default); a test
database is created and destroyed around the run. ``--db-file PATH`` keeps an
SQLite test database in that file instead of in memory; ``--db-name NAME``
names the PostgreSQL test database (default ``test_`` + the URL's name).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what",
        nargs="?",
        default="logins",
        choices=["logins", "load", "admin", "users", "hostile", "dormancy", "dashboard", "exports", "scim", "all"],
    )
    parser.add_argument("--logins", type=int, help="timed logins per scenario (logins: 50; load: 200 per level)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="responses per hostile case")
    parser.add_argument("--accounts", type=int, default=100_000, help="dormant accounts for the sweep")
    parser.add_argument("--sessions", type=int, default=2_000, help="live database sessions for the sweep")
    parser.add_argument("--db-file", help="SQLite: keep the test database in this file (not in memory)")
    parser.add_argument("--members", type=int, default=10_000, help="scim: members of the large group")
    parser.add_argument("--http", action="store_true", help="logins: also measure saml_jit behind gunicorn")
    parser.add_argument("--db-name", help="PostgreSQL: the test database's name")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="load: gunicorn workers")
    parser.add_argument("--concurrency", default="1,4,16", help="load: client threads, per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="load: time bound per product and level")
    parser.add_argument("--products", default="saml_jit,allauth,stock", help="load: which products")
    parser.add_argument("--trace-memory", action="store_true", help="dormancy: also trace Python allocations")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    products = [p.strip() for p in args.products.split(",")]
    if unknown := set(products) - {"saml_jit", "allauth", "stock"}:
        parser.error(f"--products: unknown {sorted(unknown)} (choose from saml_jit, allauth, stock)")
    setup_test_environment()
    if connection.vendor == "sqlite" and (args.db_file or args.what in ("logins", "load")):
        # Logins commit and save sessions: on a real file that costs what it costs a deployment.
        connection.settings_dict["TEST"]["NAME"] = args.db_file or os.path.join(
            tempfile.mkdtemp(prefix="saml-jit-bench-"), "bench.sqlite3"
        )
    if connection.vendor != "sqlite" and args.db_name:
        connection.settings_dict["TEST"]["NAME"] = args.db_name
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from bench import admin_events, dashboard, dormancy, exports, hostile, http_load, logins, many_users, scim

        runners: dict[str, Callable[[], None]] = {
            "logins": lambda: logins.main(args.logins or 50, http=args.http),
            "load": lambda: http_load.run(args.workers, levels, args.logins or 200, args.seconds, products),
            "admin": lambda: admin_events.run(args.events),
            "users": lambda: many_users.run(args.users),
            "hostile": lambda: hostile.run(args.rounds),
            "dormancy": lambda: dormancy.run(args.accounts, args.sessions, args.trace_memory),
            "exports": lambda: exports.run(args.events, args.accounts, args.trace_memory),
            "dashboard": lambda: dashboard.run(args.events, args.users),
            "scim": lambda: scim.run(args.users, args.members),
        }
        # ``all`` leaves out ``load`` (several processes share its database: a file, never memory).
        for what in [r for r in runners if r != "load"] if args.what == "all" else [args.what]:
            runners[what]()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
