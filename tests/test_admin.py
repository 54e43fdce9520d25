"""The review UI, as a superuser sees it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import escape

from saml_jit import events
from saml_jit.admin import EXPORT_FIELDS, RECENT_EVENTS
from saml_jit.admin.common import timestamp
from saml_jit.mapping import AssertionData
from saml_jit.models import EventKind, EventSource, FederatedIdentity, ProvisioningEvent
from saml_jit.provisioning import provision
from tests.federation import IDP_A, IDP_B

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"

CHANGELIST = "admin:saml_jit_provisioningevent_changelist"


def saml_login(subject="subject-alice-0001", email="alice@example.org", surname="Liddell", idp=IDP_A, aid=None):
    return provision(
        AssertionData(
            idp_entity_id=idp.entity_id,
            name_id=subject,
            name_id_format=PERSISTENT,
            assertion_id=aid or f"_{uuid.uuid4().hex}",
            attributes={"mail": (email,), "givenName": ("Alice",), "sn": (surname,)},
        )
    )


@pytest.fixture
def history():
    """A created + updated user from IdP A, a denial from IdP B, a SCIM event and an old one."""
    created = saml_login(aid="_created-1").event
    updated = saml_login(surname="Pleasance", aid="_updated-2").event
    denied = events.record(
        EventKind.DENIED,
        idp_entity_id=IDP_B.entity_id,
        subject="subject-bob-b",
        assertion_id="_denied-3",
        reason_code="creation_disabled",
        message="Creating accounts on first login is turned off for this IdP.",
    )
    scim = events.record(EventKind.DEACTIVATED, source=EventSource.SCIM, username="carol", subject="carol-scim")
    old = events.record(
        EventKind.REJECTED,
        reason_code="expired",
        created_at=dt.datetime(2023, 3, 14, 12, 0, tzinfo=dt.timezone.utc),
    )
    return {"created": created, "updated": updated, "denied": denied, "scim": scim, "old": old}


def listed(response):
    assert response.status_code == 200, response.content[:2000]
    return {event.pk for event in response.context["cl"].result_list}


def pks(history, *names):
    return {history[name].pk for name in names}


# --------------------------------------------------------------------------
# Event changelist


def test_changelist_lists_every_event(admin_client, history):
    response = admin_client.get(reverse(CHANGELIST))
    assert listed(response) == pks(history, "created", "updated", "denied", "scim", "old")
    assert b"subject-bob-b" in response.content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind__exact": "denied"}, {"denied"}),
        ({"kind__exact": "created"}, {"created"}),
        ({"source__exact": "scim"}, {"scim"}),
        ({"source__exact": "saml"}, {"created", "updated", "denied", "old"}),
        ({"idp": IDP_A.entity_id}, {"created", "updated"}),
        ({"idp": IDP_B.entity_id}, {"denied"}),
    ],
)
def test_changelist_filters(admin_client, history, query, expected):
    response = admin_client.get(reverse(CHANGELIST), query)
    assert listed(response) == pks(history, *expected)


def test_idp_filter_offers_configured_and_known_idps(admin_client, history, settings):
    settings.SAML_JIT = {"IDPS": {"https://configured.example/idp": {"CREATE_USERS": False}}}
    response = admin_client.get(reverse(CHANGELIST))
    content = response.content.decode()
    assert "identity provider" in content.lower()
    spec = next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "idp")
    offered = {value for value, _ in spec.lookup_choices}
    # Configured in settings, or known from identities (B has only a denial: no identity).
    assert offered == {IDP_A.entity_id, "https://configured.example/idp"}


def test_date_filter_and_hierarchy(admin_client, history):
    response = admin_client.get(reverse(CHANGELIST), {"created_at__year": "2023"})
    assert listed(response) == pks(history, "old")
    response = admin_client.get(reverse(CHANGELIST), {"created_at__year": "2023", "created_at__month": "3"})
    assert listed(response) == pks(history, "old")
    response = admin_client.get(reverse(CHANGELIST), {"created_at__year": "2022"})
    assert listed(response) == set()
    # The hierarchy itself is rendered (links per year).
    response = admin_client.get(reverse(CHANGELIST))
    assert b"created_at__year=2023" in response.content


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("alice" if not EMAIL_KEYED else "alice@example.org", {"created", "updated"}),
        ("carol", {"scim"}),
        ("subject-bob-b", {"denied"}),
        ("_updated-2", {"updated"}),
        ("_created-1", {"created"}),
        ("nobody-at-all", set()),
    ],
)
def test_changelist_search(admin_client, history, term, expected):
    response = admin_client.get(reverse(CHANGELIST), {"q": term})
    assert listed(response) == pks(history, *expected)


def test_subject_search_is_exact(admin_client, history):
    # "=subject": a prefix of a subject finds nothing (and uses the index).
    response = admin_client.get(reverse(CHANGELIST), {"q": "subject-bob"})
    assert listed(response) == set()


# --------------------------------------------------------------------------
# Event change view: read-only


def test_event_admin_permissions_all_false(rf, admin_user):
    model_admin = admin.site._registry[ProvisioningEvent]
    request = rf.get("/")
    request.user = admin_user
    event = events.record(EventKind.LOGIN, subject="s")
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request) is False
    assert model_admin.has_change_permission(request, event) is False
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_delete_permission(request, event) is False
    assert model_admin.has_view_permission(request, event) is True
    assert set(model_admin.get_readonly_fields(request, event)) >= set(model_admin.get_fields(request, event))


def test_event_change_view_is_read_only(admin_client, history):
    event = history["updated"]
    url = reverse("admin:saml_jit_provisioningevent_change", args=[event.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="_save"' not in content
    assert 'name="_continue"' not in content
    assert "_updated-2" in content
    assert not response.context["adminform"].form.fields  # nothing editable

    before = ProvisioningEvent.objects.filter(pk=event.pk).values().get()
    response = admin_client.post(
        url, {"kind": "login", "message": "rewritten", "reason_code": "x", "subject": "someone-else"}
    )
    assert response.status_code == 403
    assert ProvisioningEvent.objects.filter(pk=event.pk).values().get() == before


def test_event_add_and_delete_refused(admin_client, history):
    event = history["denied"]
    assert admin_client.get(reverse("admin:saml_jit_provisioningevent_add")).status_code == 403
    assert admin_client.post(reverse("admin:saml_jit_provisioningevent_add"), {"kind": "login"}).status_code == 403
    delete_url = reverse("admin:saml_jit_provisioningevent_delete", args=[event.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ProvisioningEvent.objects.filter(pk=event.pk).exists()
    # No bulk delete action either.
    response = admin_client.get(reverse(CHANGELIST))
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(response.wsgi_request)
    assert ProvisioningEvent.objects.count() == 5


def test_diff_renders_as_pretty_json(admin_client, history):
    event = history["updated"]
    response = admin_client.get(reverse("admin:saml_jit_provisioningevent_change", args=[event.pk]))
    pretty = json.dumps({"last_name": ["Liddell", "Pleasance"]}, indent=2, sort_keys=True)
    assert "\n" in pretty
    assert escape(pretty) in response.content.decode()
    assert b"<pre" in response.content


# --------------------------------------------------------------------------
# Exports


def export(client, action, selected):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [str(pk) for pk in selected], "index": "0"},
    )


def downloaded(response) -> str:
    """The text of an export: exports stream (a StreamingHttpResponse has no ``content``)."""
    return b"".join(response.streaming_content).decode("utf-8")


def test_csv_export_returns_selected_rows(admin_client, history):
    selected = pks(history, "updated", "denied")
    response = export(admin_client, "export_csv", selected)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(downloaded(response))))
    assert tuple(rows[0]) == EXPORT_FIELDS
    by_id = {int(row[0]): dict(zip(EXPORT_FIELDS, row, strict=True)) for row in rows[1:]}
    assert set(by_id) == selected
    updated = by_id[history["updated"].pk]
    assert json.loads(updated["diff"]) == {"last_name": ["Liddell", "Pleasance"]}
    assert updated["assertion_id"] == "_updated-2"
    assert by_id[history["denied"].pk]["reason_code"] == "creation_disabled"


def test_csv_export_neutralises_formulas(admin_client):
    event = events.record(
        EventKind.DENIED,
        username="@SUM(1+1)",
        subject='=HYPERLINK("https://evil.example","x")',
        assertion_id="+1+1",
        message="-2+3",
        reason_code="ok_code",
    )
    response = export(admin_client, "export_csv", [event.pk])
    header, row = list(csv.reader(io.StringIO(downloaded(response))))
    cells = dict(zip(header, row, strict=True))
    for field in ("username", "subject", "assertion_id", "message"):
        assert cells[field][:1] == "'", (field, cells[field])
    assert cells["subject"] == '\'=HYPERLINK("https://evil.example","x")'
    assert cells["reason_code"] == "ok_code"
    for cell in row:
        assert cell[:1] not in ("=", "+", "-", "@"), cell


def test_json_lines_export_returns_selected_rows(admin_client, history):
    selected = pks(history, "created", "scim", "old")
    response = export(admin_client, "export_json", selected)
    assert response.status_code == 200
    assert "ndjson" in response["Content-Type"]
    lines = downloaded(response).splitlines()
    rows = [json.loads(line) for line in lines]
    assert {row["id"] for row in rows} == selected
    assert set(rows[0]) == set(EXPORT_FIELDS)
    created = next(row for row in rows if row["id"] == history["created"].pk)
    assert created["kind"] == "created"
    assert created["diff"]["email"] == [None, "alice@example.org"]  # structured, not a string
    assert history["created"].user_id is not None
    assert created["user_id"] == history["created"].user_id


# --------------------------------------------------------------------------
# Identities admin


def test_identity_changelist(admin_client):
    saml_login(subject="subject-alice-0001")
    saml_login(subject="subject-bob-0002", email="bob@example.org")
    saml_login(subject="subject-bob-0002", email="bob@example.net", idp=IDP_B)
    url = reverse("admin:saml_jit_federatedidentity_changelist")

    response = admin_client.get(url)
    assert response.status_code == 200
    assert sorted(i.subject for i in response.context["cl"].result_list) == [
        "subject-alice-0001",
        "subject-bob-0002",
        "subject-bob-0002",
    ]
    response = admin_client.get(url, {"idp_entity_id__exact": IDP_B.entity_id})
    assert [i.idp_entity_id for i in response.context["cl"].result_list] == [IDP_B.entity_id]


def test_identity_search_by_subject(admin_client):
    saml_login(subject="subject-alice-0001")
    saml_login(subject="subject-bob-0002", email="bob@example.org")
    url = reverse("admin:saml_jit_federatedidentity_changelist")
    response = admin_client.get(url, {"q": "subject-bob-0002"})
    assert response.status_code == 200
    assert [i.subject for i in response.context["cl"].result_list] == ["subject-bob-0002"]


def test_identity_search_by_username(admin_client):
    bob = saml_login(subject="subject-bob-0002", email="bob@example.org").user
    saml_login(subject="subject-alice-0001")
    url = reverse("admin:saml_jit_federatedidentity_changelist")
    response = admin_client.get(url, {"q": bob.get_username()})
    assert response.status_code == 200
    assert [i.subject for i in response.context["cl"].result_list] == ["subject-bob-0002"]


def test_grant_search_does_not_crash(admin_client):
    response = admin_client.get(reverse("admin:saml_jit_grant_changelist"), {"q": "alice"})
    assert response.status_code == 200


def test_identity_is_not_editable(admin_client):
    identity = FederatedIdentity.objects.get(pk=saml_login().user.saml_identities.get().pk)
    url = reverse("admin:saml_jit_federatedidentity_change", args=[identity.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    response = admin_client.post(url, {"subject": "hijacked", "idp_entity_id": IDP_B.entity_id})
    assert response.status_code == 403
    identity.refresh_from_db()
    assert (identity.subject, identity.idp_entity_id) == ("subject-alice-0001", IDP_A.entity_id)
    assert admin_client.get(reverse("admin:saml_jit_federatedidentity_add")).status_code == 403


# --------------------------------------------------------------------------
# The user page

user_admin_registered = pytest.mark.skipif(
    User not in admin.site._registry, reason="no admin registered for this user model"
)


def user_change_url(user):
    return reverse(f"admin:{User._meta.app_label}_{User._meta.model_name}_change", args=[user.pk])


def inline_formset(response, model):
    for inline_admin_formset in response.context["inline_admin_formsets"]:
        if inline_admin_formset.formset.model is model:
            return inline_admin_formset
    raise AssertionError(f"no inline for {model.__name__}")


@user_admin_registered
def test_user_page_shows_identities_and_recent_events(admin_client):
    user = saml_login(aid="_created-1").user
    saml_login(surname="Pleasance", aid="_updated-2")
    user.refresh_from_db()
    FederatedIdentity.objects.create(user=user, idp_entity_id=IDP_B.entity_id, subject="b-subject")

    response = admin_client.get(user_change_url(user))
    assert response.status_code == 200
    content = response.content.decode()
    assert "federated identities" in content.lower()
    assert "recent provisioning events" in content.lower()
    identities = inline_formset(response, FederatedIdentity)
    assert {form.instance.subject for form in identities.formset.forms} == {"subject-alice-0001", "b-subject"}
    assert IDP_B.entity_id in content
    recent = inline_formset(response, ProvisioningEvent)
    assert [form.instance.kind for form in recent.formset.forms] == [EventKind.UPDATED, EventKind.CREATED]
    assert escape(json.dumps({"last_name": ["Liddell", "Pleasance"]}, indent=2, sort_keys=True)) in content
    # Read-only inlines: nothing to add.
    assert not identities.has_add_permission and not recent.has_add_permission


@user_admin_registered
def test_user_page_limits_recent_events(admin_client):
    user = saml_login().user
    for n in range(RECENT_EVENTS + 5):
        events.record(EventKind.LOGIN, user=user, assertion_id=f"_login-{n}")
    response = admin_client.get(user_change_url(user))
    recent = inline_formset(response, ProvisioningEvent)
    assert len(recent.formset.forms) == RECENT_EVENTS
    # The newest ones.
    assert recent.formset.forms[0].instance.assertion_id == f"_login-{RECENT_EVENTS + 4}"


def _change_form_data(response):
    """The POST data a browser would send back for an unchanged admin change form."""
    data = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or (field.disabled if hasattr(field, "disabled") else False):
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, (list, tuple)):
            data[name] = [str(v) for v in value]
        elif isinstance(value, dt.datetime):
            data[f"{name}_0"], data[f"{name}_1"] = value.date().isoformat(), value.time().isoformat()
        else:
            data[name] = value
    for inline_admin_formset in response.context["inline_admin_formsets"]:
        formset = inline_admin_formset.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for sub in formset.forms:
            for name in sub.fields:
                value = sub[name].value()
                if value is not None:
                    data[sub.add_prefix(name)] = getattr(value, "pk", value)
    return data


@user_admin_registered
def test_user_page_can_still_be_saved(admin_client):
    # The read-only inlines must not break saving the user (events are append-only).
    user = saml_login().user
    saml_login(surname="Pleasance", aid="_updated-2")
    url = user_change_url(user)
    data = _change_form_data(admin_client.get(url))
    data["first_name"] = "Alicia"
    events_before = list(ProvisioningEvent.objects.values())

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    user.refresh_from_db()
    assert user.first_name == "Alicia"
    assert list(ProvisioningEvent.objects.values()) == events_before
    assert user.saml_identities.count() == 1


def test_event_changelist_never_counts_the_whole_table(admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from saml_jit import events

    for number in range(5):
        events.record(EventKind.LOGIN, idp_entity_id=IDP_A.entity_id, subject=f"s{number}")
    url = reverse("admin:saml_jit_provisioningevent_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 5  # the primary-key span
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert all(" WHERE " in sql.upper() for sql in counts), counts
    filtered = admin_client.get(url, {"kind__exact": "login"})
    assert filtered.context["cl"].result_count == 5


def test_date_hierarchy_drills_down_without_scanning(admin_client):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from saml_jit import events

    now = timezone.localtime()
    for days in (0, 40, 400):
        events.record(EventKind.LOGIN, idp_entity_id=IDP_A.entity_id, created_at=now - timedelta(days=days))
    url = reverse("admin:saml_jit_provisioningevent_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    event_scans = [
        q["sql"]
        for q in queries.captured_queries
        if "DISTINCT" in q["sql"] and "saml_jit_provisioningevent" in q["sql"]
    ]
    assert event_scans == []
    years = {now.year, (now - timedelta(days=400)).year}
    links = [choice["title"] for choice in _hierarchy_choices(response)]
    assert {str(year) for year in years} <= set(links)
    year = (now - timedelta(days=40)).year
    drilled = admin_client.get(url, {"created_at__year": year})
    assert drilled.status_code == 200
    assert len(drilled.context["cl"].result_list) >= 1


def _hierarchy_choices(response):
    from django.contrib.admin.templatetags.admin_list import date_hierarchy

    return date_hierarchy(response.context["cl"])["choices"]


# --------------------------------------------------------------------------
# Readable at 1280 pixels: short columns with the whole value in the title; timestamps with seconds

LONG_IDP = "https://login.microsoftonline.com/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/v2.0"
LONG_SUBJECT = "AAAAAAAAAAAAAAAAAAAAAPairwiseSubjectOfSixtyFourCharacters-0123456789"


SECONDS = r'<time datetime="[^"]+"><span[^>]*>\d{4}-\d\d-\d\d</span> <span[^>]*>\d\d:\d\d:\d\d</span></time>'


def shown(moment: str, content: str) -> bool:
    """Whether ``moment`` ("Y-m-d H:i:s") is on the page as saml_jit shows timestamps (wrapping only at the space)."""
    day, clock = moment.split(" ")
    pattern = rf'<time datetime="[^"]+"><span[^>]*>{day}</span> <span[^>]*>{clock}</span></time>'
    return re.search(pattern, content) is not None


def test_long_subjects_and_idps_are_short_in_the_list_with_the_whole_value_in_the_title(admin_client):
    event = events.record(
        EventKind.DENIED, idp_entity_id=LONG_IDP, subject=LONG_SUBJECT, reason_code="creation_disabled", actor="ops"
    )
    response = admin_client.get(reverse(CHANGELIST))
    content = response.content.decode()
    assert f'title="{LONG_SUBJECT}"' in content and f'title="{LONG_IDP}"' in content
    assert f">{LONG_SUBJECT}<" not in content and f">{LONG_IDP}<" not in content
    assert ">login.microsoftonline.com<" in content  # the compact IdP label
    row = content[content.index(f"#{event.pk}</a>") :]
    row = row[: row.index("</tr>")]
    assert "creation_<wbr>disabled" in row and ">ops<" in row  # reason (breakable at "_") and actor stay in the row
    # Still found by the exact subject, and sortable by the columns.
    assert listed(admin_client.get(reverse(CHANGELIST), {"q": LONG_SUBJECT})) == {event.pk}
    sorted_by_reason = admin_client.get(reverse(CHANGELIST), {"o": "5"})
    assert sorted_by_reason.status_code == 200 and listed(sorted_by_reason) == {event.pk}


def test_timestamps_show_seconds_in_lists_and_pages(admin_client, settings):
    settings.TIME_ZONE = "UTC"
    moment = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    event = events.record(EventKind.LOGIN, subject="s-1", created_at=moment)
    assert shown("2024-05-06 07:08:09", admin_client.get(reverse(CHANGELIST)).content.decode())
    page = admin_client.get(reverse("admin:saml_jit_provisioningevent_change", args=[event.pk])).content.decode()
    assert shown("2024-05-06 07:08:09", page)


def test_the_grant_list_shows_when_a_grant_expires_with_seconds(admin_client, settings):
    from django.contrib.auth.models import Group

    from saml_jit.models import Grant

    settings.TIME_ZONE = "UTC"
    user = saml_login().user
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    Grant.objects.create(
        user=user,
        idp_entity_id=IDP_A.entity_id,
        kind="group",
        group=Group.objects.create(name="ops"),
        expires_at=expires,
    )
    response = admin_client.get(reverse("admin:saml_jit_grant_changelist"))
    content = response.content.decode()
    assert "expires at" in content.lower() and shown("2030-01-02 03:04:05", content)
    identity = user.saml_identities.get()
    identities = admin_client.get(reverse("admin:saml_jit_federatedidentity_changelist")).content.decode()
    assert shown(timestamp(identity.last_asserted_at), identities)


@user_admin_registered
def test_user_page_links_each_event_and_all_events_of_the_user(admin_client):
    user = saml_login(aid="_created-1").user
    saml_login(surname="Pleasance", aid="_updated-2")
    other = events.record(EventKind.LOGIN, subject="someone-else")
    mine = list(ProvisioningEvent.objects.filter(user=user))
    response = admin_client.get(user_change_url(user))
    content = response.content.decode()
    for event in mine:
        change = reverse("admin:saml_jit_provisioningevent_change", args=[event.pk])
        assert f'<a href="{change}">#{event.pk}</a>' in content
    all_events = f"{reverse(CHANGELIST)}?user__id__exact={user.pk}"
    assert f'href="{all_events}"' in content and "All events of this user" in content
    assert listed(admin_client.get(all_events)) == {event.pk for event in mine}
    assert other.pk not in listed(admin_client.get(all_events))
    assert re.search(SECONDS, content)  # the inlines' timestamps have seconds
