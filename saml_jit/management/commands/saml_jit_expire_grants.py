"""Remove privileges whose time to live has passed (run from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from saml_jit.models import Grant
from saml_jit.provisioning.grants import expire_grants


class Command(BaseCommand):
    help = "Remove expired SAML grants (privileged groups, staff, superuser) and what they gave."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count the expired grants.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        if dry_run:
            from django.utils import timezone

            count = Grant.objects.filter(expires_at__lte=timezone.now()).count()
            self.stdout.write(f"{count} expired grant(s) would be removed.")
            return
        removed = expire_grants()
        self.stdout.write(self.style.SUCCESS(f"{removed} expired grant(s) removed."))
