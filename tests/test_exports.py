"""Evidence exports of events (saml_jit.admin.events, saml_jit.review.exports, ``saml_jit_export events``).

The event list exports the whole filtered result, not a page and not only the
selected rows, streamed; the command writes the same bytes for cron and SIEM
ingestion. Every event has a reference (``#<id>``, as error pages show it),
a column of the list that its search finds.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from datetime import timezone as tz
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from saml_jit import events
from saml_jit.admin import EXPORT_FIELDS
from saml_jit.admin.events import reference_number
from saml_jit.models import EventKind, EventReview, EventSource, ProvisioningEvent
from saml_jit.review.exports import CHUNK
from tests.federation import IDP_A, IDP_B

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
CHANGELIST = "admin:saml_jit_provisioningevent_changelist"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=tz.utc)
DENIED = 130  # more than a changelist page (100)


@pytest.fixture
def many(settings):
    """130 denials from IdP A over 130 hours, 20 logins from IdP B, 5 SCIM deprovisionings."""
    settings.SAML_JIT = {"IDPS": {IDP_A.entity_id: {}, IDP_B.entity_id: {}}}  # the IdP filter offers both
    ProvisioningEvent.objects.bulk_create(
        ProvisioningEvent(
            created_at=T0 + timedelta(hours=i),
            kind=EventKind.DENIED,
            idp_entity_id=IDP_A.entity_id,
            subject=f"subject-{i}",
            username=f"user-{i}",
            reason_code="creation_disabled",
            diff={"n": i},
        )
        for i in range(DENIED)
    )
    ProvisioningEvent.objects.bulk_create(
        ProvisioningEvent(created_at=T0 + timedelta(hours=i), kind=EventKind.LOGIN, idp_entity_id=IDP_B.entity_id)
        for i in range(20)
    )
    ProvisioningEvent.objects.bulk_create(
        ProvisioningEvent(created_at=T0, kind=EventKind.DEACTIVATED, source=EventSource.SCIM) for _ in range(5)
    )


def downloaded(response) -> str:
    assert isinstance(response, StreamingHttpResponse), type(response)
    return b"".join(response.streaming_content).decode("utf-8")


def export(client, fmt="csv", **query) -> str:
    response = client.get(reverse(CHANGELIST), {**query, "_export": fmt})
    assert response.status_code == 200, response
    return downloaded(response)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def command(*args, stderr=None) -> str:
    out = io.StringIO()
    call_command("saml_jit_export", "events", *args, stdout=out, stderr=stderr or io.StringIO())
    return out.getvalue()


# --------------------------------------------------------------------------
# The whole filtered result, streamed


def test_the_list_exports_every_filtered_event_not_a_page(many, admin_client):
    page = admin_client.get(reverse(CHANGELIST), {"kind__exact": "denied"})
    assert len(page.context["cl"].result_list) == 100  # one page
    response = admin_client.get(reverse(CHANGELIST), {"kind__exact": "denied", "_export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="saml_jit_events.csv"'
    rows = csv_rows(downloaded(response))
    assert len(rows) == DENIED
    assert {r["kind"] for r in rows} == {"denied"}
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(ids)  # oldest first, by reference
    assert [r["reference"] for r in rows[:2]] == [f"#{ids[0]}", f"#{ids[1]}"]
    assert tuple(rows[0]) == EXPORT_FIELDS


def test_the_export_applies_every_changelist_filter_and_the_search(many, admin_client):
    assert len(csv_rows(export(admin_client))) == DENIED + 25
    assert len(csv_rows(export(admin_client, idp=IDP_B.entity_id))) == 20
    assert len(csv_rows(export(admin_client, source__exact="scim"))) == 5
    assert len(csv_rows(export(admin_client, q="user-12"))) == 11  # user-12, user-120 … user-129
    day = T0 + timedelta(days=1)
    dated = {"created_at__year": day.year, "created_at__month": day.month, "created_at__day": day.day}
    assert len(csv_rows(export(admin_client, kind__exact="denied", **dated))) == 24
    assert len(csv_rows(export(admin_client, p="2"))) == DENIED + 25  # the page does not matter


def test_json_lines_export_of_the_filtered_list(many, admin_client):
    text = export(admin_client, "jsonl", kind__exact="denied")
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == DENIED
    assert set(rows[0]) == set(EXPORT_FIELDS)
    assert rows[0]["diff"] == {"n": 0}  # structured, not a string
    assert rows[0]["reference"] == f"#{rows[0]['id']}"
    assert rows[0]["created_at"] == T0.isoformat()


def test_the_list_links_its_exports_with_its_filters(many, admin_client):
    page = admin_client.get(reverse(CHANGELIST), {"kind__exact": "denied", "p": "1"}).content.decode()
    assert "?kind__exact=denied&amp;_export=csv" in page
    assert "?kind__exact=denied&amp;_export=jsonl" in page


def test_export_actions_stream_the_selection_or_everything_selected_across(many, admin_client):
    chosen = list(ProvisioningEvent.objects.filter(kind="login").values_list("pk", flat=True)[:3])
    picked = admin_client.post(reverse(CHANGELIST), {"action": "export_csv", "_selected_action": chosen, "index": "0"})
    assert {int(r["id"]) for r in csv_rows(downloaded(picked))} == set(chosen)
    across = admin_client.post(
        reverse(CHANGELIST) + "?kind__exact=denied",
        {"action": "export_json", "_selected_action": chosen[:1], "select_across": "1", "index": "0"},
    )
    assert len(downloaded(across).splitlines()) == DENIED


def test_an_export_reads_in_chunks_and_never_holds_the_result(many, admin_client, monkeypatch):
    chunks = []
    real = ProvisioningEvent.objects.none().__class__.iterator

    def spy(self, chunk_size=None):
        chunks.append(chunk_size)
        return real(self, chunk_size=chunk_size)

    monkeypatch.setattr(type(ProvisioningEvent.objects.all()), "iterator", spy)
    response = admin_client.get(reverse(CHANGELIST), {"_export": "csv"})
    assert chunks == []  # nothing read before the download is consumed
    assert len(csv_rows(downloaded(response))) == DENIED + 25
    assert chunks == [CHUNK]


def test_csv_export_neutralises_formulas(admin_client):
    events.record(
        EventKind.DENIED,
        username="@SUM(1+1)",
        subject='=HYPERLINK("https://evil.example","x")',
        assertion_id="+1+1",
        message="-2+3",
        user_agent="\tcmd",
        reason_code="ok_code",
    )
    (row,) = csv_rows(export(admin_client))
    for field in ("username", "subject", "assertion_id", "message", "user_agent"):
        assert row[field][:1] == "'", (field, row[field])
    assert row["reason_code"] == "ok_code"
    for cell in row.values():
        assert cell[:1] not in ("=", "+", "-", "@", "\t"), cell


def test_exports_need_the_view_permission(many):
    user = User.objects.create_user(
        **{User.USERNAME_FIELD: "staff@example.org" if EMAIL_KEYED else "staff"}, password="pw", is_staff=True
    )
    client = Client()
    client.force_login(user)
    assert client.get(reverse(CHANGELIST), {"_export": "csv"}).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_provisioningevent"))
    assert len(csv_rows(export(client))) == DENIED + 25


def test_bad_export_requests(admin_client):
    assert admin_client.get(reverse(CHANGELIST), {"_export": "xlsx"}).status_code == 400
    response = admin_client.get(reverse(CHANGELIST), {"_export": "csv", "no_such_field": "1"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_the_export_says_who_reviewed_what(admin_client):
    due = events.record(EventKind.LINKED, username="alice")
    done = events.record(EventKind.LINKED, username="bob")
    plain = events.record(EventKind.LOGIN, username="carol")
    ProvisioningEvent.objects.filter(pk__in=[due.pk, done.pk]).update(review_required=True)
    EventReview.objects.create(event=done, reviewed_by="root", reviewed_at=T0)
    rows = {row["id"]: row for row in csv_rows(export(admin_client))}
    assert (rows[str(due.pk)]["review_required"], rows[str(due.pk)]["reviewed_by"]) == ("True", "")
    assert (rows[str(done.pk)]["reviewed_by"], rows[str(done.pk)]["reviewed_at"]) == ("root", T0.isoformat())
    assert (rows[str(plain.pk)]["review_required"], rows[str(plain.pk)]["reviewed_at"]) == ("False", "")
    debt = [json.loads(line) for line in export(admin_client, "jsonl", review="due").splitlines()]
    assert [(row["id"], row["reviewed_by"]) for row in debt] == [(due.pk, "")]


# --------------------------------------------------------------------------
# References


def test_reference_numbers():
    assert reference_number("#123") == (123, True)
    assert reference_number(" 123 ") == (123, False)
    assert reference_number("#12a") is None
    assert reference_number("user-123") is None
    assert reference_number("9" * 19) is None  # past a 64-bit key: a text search


def test_the_list_shows_and_links_each_reference(admin_client):
    event = events.record(EventKind.DENIED, username="alice", reason_code="creation_disabled")
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    change = reverse("admin:saml_jit_provisioningevent_change", args=[event.pk])
    assert f'<a href="{change}">#{event.pk}</a>' in page
    detail = admin_client.get(change).content.decode()
    assert "Reference" in detail and f"#{event.pk}" in detail


def test_a_reference_search_finds_the_event(admin_client):
    target = events.record(EventKind.DENIED, username="alice", reason_code="creation_disabled")
    namesake = events.record(EventKind.LOGIN, username=f"user-{target.pk}")
    other = events.record(EventKind.LOGIN, username="bob")

    def found(term):
        return {e.pk for e in admin_client.get(reverse(CHANGELIST), {"q": term}).context["cl"].result_list}

    assert found(f"#{target.pk}") == {target.pk}
    assert found(str(target.pk)) == {target.pk, namesake.pk}  # the number, and the search fields still
    assert found("bob") == {other.pk}
    assert found("#999999") == set()
    assert found("#999999999999999999") == set()


# --------------------------------------------------------------------------
# The command


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_command_writes_what_the_admin_downloads(many, admin_client, tmp_path, fmt):
    from_admin = export(admin_client, fmt, kind__exact="denied", idp=IDP_A.entity_id)
    args = ["--kind", "denied", "--idp", IDP_A.entity_id, "--format", fmt]
    assert command(*args) == from_admin
    target = tmp_path / f"events.{fmt}"
    err = io.StringIO()
    assert command(*args, "--output", str(target), stderr=err) == ""
    assert target.read_bytes().decode("utf-8") == from_admin
    assert f"{DENIED} event(s) written to {target}" in err.getvalue()


def test_the_command_filters(many):
    def count(*args):
        return len(command("--format", "jsonl", *args).splitlines())

    assert count() == DENIED + 25
    assert count("--kind", "login", "--kind", "deactivated") == 25
    assert count("--source", "scim") == 5
    assert count("--idp", IDP_B.entity_id) == 20
    assert count("--since", (T0 + timedelta(hours=100)).isoformat(), "--kind", "denied") == DENIED - 100
    assert count("--until", "2025-03-01T13:00:00Z", "--kind", "denied") == 1
    assert count("--since", "2025-03-02", "--until", "2025-03-03", "--kind", "denied") == 24
    assert count("--days", "1") == 0  # all in 2025


def test_the_command_since_days_for_cron():
    events.record(EventKind.LOGIN, username="recent")
    old = events.record(EventKind.LOGIN, username="old")
    ProvisioningEvent.objects.filter(pk=old.pk).update(created_at=T0)
    rows = [json.loads(line) for line in command("--days", "7", "--format", "jsonl").splitlines()]
    assert [r["username"] for r in rows] == ["recent"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601 date"),
        (["--until", "2025-13-01"], "--until: '2025-13-01' is not an ISO 8601 date"),
        (["--kind", "denied", "--kind", "exploded"], "--kind: unknown 'exploded'; choose from created, linked"),
        (["--source", "ldap"], "--source: unknown 'ldap'"),
        (["--days", "0"], "--days must be at least 1"),
        (["--since", "2025-03-02", "--until", "2025-03-01"], "--since must be before --until"),
        (["--since", "2025-03-02", "--days", "3"], "not allowed with argument"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--output", "/nonexistent-dir/events.csv"], "--output: cannot write /nonexistent-dir/events.csv"),
    ],
)
def test_the_command_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        command(*args)


def test_a_failed_export_leaves_no_file(tmp_path, monkeypatch):
    events.record(EventKind.LOGIN, username="x")

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("saml_jit.management.commands.saml_jit_export.event_rows", broken)
    target = tmp_path / "events.csv"
    with pytest.raises(RuntimeError):
        command("--output", str(target))
    assert list(tmp_path.iterdir()) == []


def test_bad_input_exits_with_status_1_and_a_message():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "django", "saml_jit_export", "events", "--since", "yesterday"],
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "CommandError: --since: 'yesterday' is not an ISO 8601 date" in result.stderr
    assert result.stdout == ""
