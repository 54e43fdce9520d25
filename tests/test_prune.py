"""saml_jit_prune: events past retention, never the ones still guarding an assertion."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from saml_jit import events
from saml_jit.models import EventKind, ProvisioningEvent

pytestmark = pytest.mark.django_db


def old_event(age: timedelta, assertion_id: str = "") -> ProvisioningEvent:
    return events.record(
        EventKind.LOGIN,
        idp_entity_id="https://idp.example/",
        assertion_id=assertion_id,
        created_at=timezone.now() - age,
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("saml_jit_prune", *args, stdout=out)
    return out.getvalue()


def test_events_kept_unless_retention_given():
    old_event(timedelta(days=400))
    assert "Nothing to do" in run()
    assert ProvisioningEvent.objects.count() == 1


def test_events_older_than_retention_deleted():
    old_event(timedelta(days=400))
    recent = old_event(timedelta(days=10))
    assert "1 event(s) older than 365 days deleted" in run("--events-days", "365")
    assert list(ProvisioningEvent.objects.all()) == [recent]


def test_events_still_guarding_an_assertion_are_kept(settings):
    """An IdP allowed 3-day-old responses: its 2-day-old login events are still replay records."""
    settings.SAML_JIT = {"MAX_RESPONSE_AGE": 3 * 86400}
    guarding = old_event(timedelta(days=2), assertion_id="_still-valid")
    old_event(timedelta(days=4), assertion_id="_long-dead")
    assert "1 event(s) older than 1 days deleted" in run("--events-days", "1")
    assert list(ProvisioningEvent.objects.all()) == [guarding]


def test_dry_run_deletes_nothing():
    old_event(timedelta(days=400))
    assert "1 event(s) older than 365 days would be deleted" in run("--events-days", "365", "--dry-run")
    assert ProvisioningEvent.objects.count() == 1


def test_rejects_nonsense_retention():
    with pytest.raises(CommandError):
        run("--events-days", "0")
