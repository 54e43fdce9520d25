"""Evidence exports for cron and SIEM ingestion: ``saml_jit_export <subcommand>``.

``events``    provisioning events, oldest first (by reference), filtered by
              time (``--since``/``--days``, ``--until``), kind, IdP and source.
``snapshot``  the access snapshot: who has what, why and since when, filtered
              by IdP, group, privileged only.

Both stream (bounded memory at any size) as CSV or JSON lines to a file or to
standard output. A file is written beside its final name and renamed into
place when complete, so a collector never picks up half an export. Bad input
(a date that is not ISO 8601, an unknown kind) is a ``CommandError``: a
message on standard error and exit status 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from saml_jit.admin.events import known_idps
from saml_jit.models import EventKind, EventSource, ProvisioningEvent
from saml_jit.review import access
from saml_jit.review.exports import FORMATS, event_rows, lines, snapshot_rows

SUBCOMMANDS = {
    "events": "Provisioning events, oldest first, as CSV or JSON lines (for cron and SIEM ingestion).",
    "snapshot": "The access snapshot (who has what, why, since when) as CSV or JSON lines.",
}


def parse_moment(option: str, value: str) -> datetime:
    """An ISO 8601 date or date and time; naive ones are in the current time zone."""
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError:  # well formed, but no such date (2025-13-01)
        moment = day = None
    if moment is None and day is not None:
        moment = datetime.combine(day, time())
    if moment is None:
        raise CommandError(f"{option}: {value!r} is not an ISO 8601 date or date and time (e.g. 2025-01-31T08:00Z).")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Evidence exports: " + "; ".join(f"{name}: {text}" for name, text in SUBCOMMANDS.items())

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar=f"{{{','.join(SUBCOMMANDS)}}}")
        for name, text in SUBCOMMANDS.items():
            sub = subparsers.add_parser(
                name, help=text, description=text, called_from_command_line=parser.called_from_command_line
            )
            getattr(self, f"add_{name}")(sub)
            sub.add_argument("--format", choices=FORMATS, default="csv", help="csv (default) or jsonl (JSON lines).")
            sub.add_argument("--output", "-o", default="-", metavar="FILE", help="A file, or - for standard output.")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        self.verbosity = int(options.get("verbosity", 1))
        getattr(self, f"handle_{subcommand}")(**options)

    # -- events ------------------------------------------------------------

    def add_events(self, parser: CommandParser) -> None:
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--since", metavar="ISO", help="Events at or after this date or time.")
        when.add_argument("--days", type=int, metavar="N", help="Events of the last N days.")
        parser.add_argument("--until", metavar="ISO", help="Events before this date or time.")
        parser.add_argument("--kind", action="append", default=[], metavar="KIND", help="Repeatable: kinds to keep.")
        parser.add_argument("--idp", metavar="ENTITY_ID", help="Events of this IdP only.")
        parser.add_argument("--source", metavar="SOURCE", help=f"One of {', '.join(EventSource.values)}.")

    def handle_events(self, *, format: str, output: str, **options: Any) -> None:
        events = self.events(**options)
        self.write(event_rows(events), format, output, "event(s)")

    def events(
        self,
        *,
        since: str | None = None,
        days: int | None = None,
        until: str | None = None,
        kind: list[str] | None = None,
        idp: str | None = None,
        source: str | None = None,
        **options: Any,
    ) -> QuerySet[ProvisioningEvent]:
        """The events the options select (raises CommandError on bad input)."""
        events = ProvisioningEvent.objects.all()
        start = parse_moment("--since", since) if since else None
        if days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1.")
            start = timezone.now() - timedelta(days=days)
        end = parse_moment("--until", until) if until else None
        if start and end and start >= end:
            raise CommandError("--since must be before --until.")
        events = events.filter(created_at__gte=start) if start else events
        events = events.filter(created_at__lt=end) if end else events
        if kind:
            events = events.filter(kind__in=_known("--kind", kind, EventKind.values))
        if source:
            events = events.filter(source=_known("--source", [source], EventSource.values)[0])
        return events.filter(idp_entity_id=idp) if idp else events

    # -- snapshot ----------------------------------------------------------

    def add_snapshot(self, parser: CommandParser) -> None:
        parser.add_argument("--idp", default="", metavar="ENTITY_ID", help="Accounts with an identity at this IdP.")
        parser.add_argument("--group", default="", metavar="NAME", help="Members of this group.")
        parser.add_argument(
            "--privileged-only", action="store_true", help="Staff, superusers and members of privileged groups."
        )

    def handle_snapshot(
        self, *, idp: str, group: str, privileged_only: bool, format: str, output: str, **options: Any
    ) -> None:
        if idp and idp not in known_idps():
            raise CommandError(f"--idp: no IdP {idp!r} in settings or among the identities.")
        if group and not Group.objects.filter(name=group).exists():
            raise CommandError(f"--group: no group named {group!r}.")
        users = access.accounts(idp=idp, group=group, privileged_only=privileged_only)
        self.write(snapshot_rows(users, format), format, output, "row(s)")

    # -- output ------------------------------------------------------------

    def write(self, rows: tuple[tuple[str, ...], Iterable[Any]], fmt: str, output: str, noun: str) -> None:
        """Stream ``rows`` to ``output``; say how many on standard error (data keeps standard output)."""
        fields, data = rows
        counted = _Counter(data)
        if output == "-":
            _copy(lines((fields, counted), fmt), self.stdout)
        else:
            _write_file(lines((fields, counted), fmt), output)
        if self.verbosity >= 1 and (output != "-" or self.verbosity >= 2):
            where = "standard output" if output == "-" else output
            self.stderr.write(f"{counted.count} {noun} written to {where}.")


class _Counter:
    """Counts the rows as they stream past."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[Any]:
        for row in self.rows:
            self.count += 1
            yield row


def _known(option: str, values: list[str], allowed: list[str]) -> list[str]:
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise CommandError(f"{option}: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}.")
    return values


def _copy(chunks: Iterable[str], out: OutputWrapper) -> None:
    for chunk in chunks:
        out.write(chunk, ending="")
    out.flush()


def _write_file(chunks: Iterable[str], path: str) -> None:
    partial = f"{path}.partial"
    try:
        with open(partial, "w", encoding="utf-8", newline="") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(partial, path)
    except BaseException as error:
        if os.path.exists(partial):
            os.unlink(partial)
        if isinstance(error, OSError):
            raise CommandError(f"--output: cannot write {path}: {error.strerror or error}") from error
        raise
