"""Fetch, verify and show IdP metadata and its certificates (run from cron, or before a key rollover).

Every ``SAML_JIT["METADATA"]`` source is fetched now (whatever its schedule)
and checked like a scheduled refresh: a good copy becomes the last good copy
every node serves, a refused one is reported (log line and event) and leaves
the last good copy in place. Then each IdP's certificates are listed — from
those copies and from ``SAML_CONFIG``'s ``inline``/``local`` metadata — with
their use, subject and expiry. The exit status is non-zero when a source was
refused or an IdP has no valid metadata left, so cron and monitoring notice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from saml_jit.conf import app_settings
from saml_jit.saml import config, metadata
from saml_jit.saml.certificates import CertificateInfo, certificates, configured_documents


class Command(BaseCommand):
    help = "Fetch and verify SAML_JIT['METADATA'] now, and show every IdP certificate with its expiry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check-only", action="store_true", help="Fetch and verify, but keep the stored copies as they are."
        )

    def handle(self, *args: Any, check_only: bool = False, **options: Any) -> None:
        now = datetime.now(timezone.utc)
        failures = [problem for source in metadata.sources() for problem in self.source(source, check_only, now)]
        try:
            documents = configured_documents(dict(getattr(settings, "SAML_CONFIG", None) or {}))
        except metadata.MetadataRefused as exc:
            failures.append(f"SAML_CONFIG metadata: {exc.detail}")
            documents = []
        for label, xml in documents:
            failures += self.document(label, xml, now)
        if not check_only:
            config.refresh()  # this process; the others rebuild when their copy falls due
        if failures:
            raise CommandError("; ".join(failures))

    def source(self, source: metadata.Source, check_only: bool, now: datetime) -> list[str]:
        """Fetch and check one source; list the certificates of the copy that will serve."""
        self.stdout.write(f"{source.label}{' (signed by ' + source.cert + ')' if source.cert else ''}")
        try:
            copy = self.fetch(source, check_only)
        except metadata.MetadataRefused as exc:
            self.stderr.write(f"  refused: {exc.code}: {exc.detail}")
            last = metadata.Store().get(source)
            if last is None or last.expired(now.timestamp()):
                return [f"{source.label}: {exc.code}, and no valid copy is left"]
            self.stdout.write(f"  the last good copy (fetched {_when(last.fetched_at)}) keeps serving")
            return [f"{source.label}: {exc.code}", *self.document("  last good copy", last.xml, now, quiet=True)]
        due = copy.due_at(app_settings.METADATA_REFRESH)
        self.stdout.write(
            f"  ok: {len(copy.entity_ids)} entities, validUntil {_when(copy.valid_until)}, "
            f"cacheDuration {copy.cache_duration or '-'} s, next refresh {_when(due)}"
        )
        return self.document("", copy.xml, now, quiet=True)

    @staticmethod
    def fetch(source: metadata.Source, check_only: bool) -> metadata.Copy:
        if check_only:
            return metadata.check(metadata.read(source), source)
        return metadata.refresh(source)

    def document(self, label: str, xml: bytes, now: datetime, quiet: bool = False) -> list[str]:
        if label and not quiet:
            self.stdout.write(label)
        try:
            found = certificates(xml)
        except metadata.MetadataRefused as exc:
            self.stderr.write(f"  refused: {exc.code}: {exc.detail}")
            return [f"{label.strip()}: {exc.code}"]
        for info in found:
            self.stdout.write(self.line(info, now))
        return []

    def line(self, info: CertificateInfo, now: datetime) -> str:
        text = f"  {info.entity_id} {info.role} {info.use}: {info.subject}, expires {info.not_after:%Y-%m-%d}"
        days = app_settings.METADATA_CERT_WARNING_DAYS
        if info.not_after <= now:
            return self.style.WARNING(f"{text} (EXPIRED)")
        if info.expires_within(now, days):
            return self.style.WARNING(f"{text} (within {days} days)")
        return text


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
