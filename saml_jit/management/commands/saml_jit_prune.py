"""Delete what saml_jit no longer needs: expired replay records and, optionally, old events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from saml_jit.models import ConsumedAssertion, ProvisioningEvent
from saml_jit.replay import prune


class Command(BaseCommand):
    help = (
        "Delete consumed-assertion records past their assertion's lifetime; with --events-days N, also "
        "delete provisioning events older than N days (your retention period)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events-days", type=int, default=None, help="Delete events older than this many days.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args: Any, events_days: int | None = None, dry_run: bool = False, **options: Any) -> None:
        now = timezone.now()
        if events_days is not None and events_days < 1:
            raise CommandError("--events-days must be at least 1.")
        if dry_run:
            replays = ConsumedAssertion.objects.filter(expires_at__lt=now).count()
            self.stdout.write(f"{replays} expired replay record(s) would be deleted.")
        else:
            self.stdout.write(f"{prune(now)} expired replay record(s) deleted.")
        if events_days is None:
            return
        old = ProvisioningEvent.objects.filter(created_at__lt=now - timedelta(days=events_days))
        if dry_run:
            self.stdout.write(f"{old.count()} event(s) older than {events_days} days would be deleted.")
        else:
            deleted, _ = old.delete()
            self.stdout.write(f"{deleted} event(s) older than {events_days} days deleted.")
