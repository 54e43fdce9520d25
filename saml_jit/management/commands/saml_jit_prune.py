"""Delete provisioning events past your retention period, and session index rows past their session's end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from saml_jit.models import ProvisioningEvent, SamlSession
from saml_jit.provisioning.replay import guard_window


class Command(BaseCommand):
    help = (
        "Delete provisioning events older than --events-days N (your retention period). Events young enough "
        "to still guard their assertion against a replay are always kept. Always deletes the session index rows "
        "(LOGOUT_ALL_SESSIONS) of sessions that have ended."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events-days", type=int, default=None, help="Delete events older than this many days.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args: Any, events_days: int | None = None, dry_run: bool = False, **options: Any) -> None:
        self.prune_sessions(dry_run)
        if events_days is None:
            self.stdout.write("Nothing to do: give --events-days N to delete events older than N days.")
            return
        if events_days < 1:
            raise CommandError("--events-days must be at least 1.")
        now = timezone.now()
        # The replay record is the login's event: never delete one that still guards.
        cutoff = min(now - timedelta(days=events_days), now - guard_window())
        old = ProvisioningEvent.objects.filter(created_at__lt=cutoff)
        if dry_run:
            self.stdout.write(f"{old.count()} event(s) older than {events_days} days would be deleted.")
        else:
            deleted, _ = old.delete()
            self.stdout.write(f"{deleted} event(s) older than {events_days} days deleted.")

    def prune_sessions(self, dry_run: bool) -> None:
        """Index rows of ended sessions: nothing is left to end (a login writes them, never deletes them)."""
        ended = SamlSession.objects.filter(expires_at__lte=timezone.now())
        count = ended.count() if dry_run else ended.delete()[0]
        if count:
            verb = "would be deleted" if dry_run else "deleted"
            self.stdout.write(f"{count} session index row(s) of ended sessions {verb}.")
