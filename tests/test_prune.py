"""saml_jit_prune: replay records past their lifetime, events past retention."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from saml_jit import events
from saml_jit.models import ConsumedAssertion, EventKind, ProvisioningEvent

pytestmark = pytest.mark.django_db


def consumed(assertion_id: str, expires_in: timedelta) -> None:
    ConsumedAssertion.objects.create(
        idp_entity_id="https://idp.example/", assertion_id=assertion_id, expires_at=timezone.now() + expires_in
    )


def old_event(days: int) -> ProvisioningEvent:
    return events.record(
        EventKind.LOGIN, idp_entity_id="https://idp.example/", created_at=timezone.now() - timedelta(days=days)
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("saml_jit_prune", *args, stdout=out)
    return out.getvalue()


def test_prunes_only_expired_replay_records():
    consumed("gone", timedelta(minutes=-1))
    consumed("kept", timedelta(minutes=5))
    assert "1 expired replay record(s) deleted" in run()
    assert list(ConsumedAssertion.objects.values_list("assertion_id", flat=True)) == ["kept"]


def test_events_kept_unless_retention_given():
    old_event(400)
    run()
    assert ProvisioningEvent.objects.count() == 1


def test_events_older_than_retention_deleted():
    old_event(400)
    recent = old_event(10)
    assert "1 event(s) older than 365 days deleted" in run("--events-days", "365")
    assert list(ProvisioningEvent.objects.all()) == [recent]


def test_dry_run_deletes_nothing():
    consumed("gone", timedelta(minutes=-1))
    old_event(400)
    output = run("--events-days", "365", "--dry-run")
    assert "1 expired replay record(s) would be deleted" in output
    assert "1 event(s) older than 365 days would be deleted" in output
    assert ConsumedAssertion.objects.count() == 1 and ProvisioningEvent.objects.count() == 1


def test_rejects_nonsense_retention():
    with pytest.raises(CommandError):
        run("--events-days", "0")
