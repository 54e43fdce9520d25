"""Account lifecycle from the command line: ``saml_jit_lifecycle <subcommand>``.

``sweep``  suspend accounts with no IdP evidence for ``DORMANT_AFTER`` days
           (run it from cron, e.g. daily); see :mod:`saml_jit.provisioning.dormancy`.
``report`` ways around SSO: SSO accounts with a usable password, staff and
           superusers without a federated identity, sessions of accounts
           that are not active (always 0); ``--list`` prints the accounts.

Each subcommand is an ``add_<name>`` method (its arguments) and a
``handle_<name>`` method (its work); adding one is adding those two.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from saml_jit.provisioning import dormancy
from saml_jit.review import reports

SUBCOMMANDS = {
    "sweep": "Suspend accounts with no evidence from their IdP for DORMANT_AFTER days (ends their sessions).",
    "report": "Ways around SSO: SSO accounts with a password, local administrators, sessions of inactive accounts.",
}


class Command(BaseCommand):
    help = "Account lifecycle: " + "; ".join(f"{name}: {text}" for name, text in SUBCOMMANDS.items())

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar=f"{{{','.join(SUBCOMMANDS)}}}")
        for name, text in SUBCOMMANDS.items():
            sub = subparsers.add_parser(
                name, help=text, description=text, called_from_command_line=parser.called_from_command_line
            )
            getattr(self, f"add_{name}")(sub)

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        getattr(self, f"handle_{subcommand}")(**options)

    # -- sweep -------------------------------------------------------------

    def add_sweep(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count and list the accounts; change nothing.")
        parser.add_argument("--idp", metavar="ENTITY_ID", help="Sweep only this IdP (default: every IdP with one).")
        parser.add_argument(
            "--days",
            type=int,
            help="Override DORMANT_AFTER for this run (an IdP where it is off is swept only when named with --idp).",
        )
        parser.add_argument("--batch-size", type=int, default=dormancy.BATCH, help="Accounts per transaction.")

    def handle_sweep(
        self, *, dry_run: bool, idp: str | None, days: int | None, batch_size: int, **options: Any
    ) -> None:
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if idp and days is None and dormancy.plan(idp) == []:
            raise CommandError(f"Dormancy is off for {idp}: set its DORMANT_AFTER, or give --days N.")
        results = dormancy.sweep(idp, days=days, dry_run=dry_run, batch=batch_size)
        if not results:
            self.stdout.write("Nothing to do: DORMANT_AFTER is off for every IdP (give --idp and --days to sweep one).")
        for result in results:
            self._report(result)

    def _report(self, result: dormancy.SweepResult) -> None:
        where = f"{result.idp_entity_id} ({result.days} days, no evidence since {result.cutoff:%Y-%m-%d %H:%M} UTC)"
        if result.dry_run:
            self.stdout.write(f"{where}: {result.considered} account(s) would be suspended.")
            for pk, username in result.accounts:
                self.stdout.write(f"  id={pk} username={username}")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{where}: {result.considered} dormant, {result.suspended} suspended, "
                f"{result.skipped_fresh} skipped (fresh evidence meanwhile)."
            )
        )

    # -- report ------------------------------------------------------------

    def add_report(self, parser: CommandParser) -> None:
        parser.add_argument("--list", action="store_true", help="Also list the accounts (id and username).")

    def handle_report(self, *, list: bool, **options: Any) -> None:
        found = reports.sso_bypass()
        for label, users in (
            ("SSO accounts with a usable password", found.sso_with_password),
            ("staff and superusers without a federated identity", found.privileged_without_identity),
        ):
            self.stdout.write(f"{label}: {users.count()}")
            if list:
                for user in users.iterator(chunk_size=2000):
                    self.stdout.write(f"  id={user.pk} username={user.get_username()}")
        sessions = (
            "not countable with this session engine" if found.inactive_sessions is None else found.inactive_sessions
        )
        self.stdout.write(f"sessions of accounts that are not active: {sessions}")
