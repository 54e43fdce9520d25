"""Access review end to end: open a campaign, decide, apply, close, export, and what the next login does."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from saml_jit.models import (
    AccessHold,
    Campaign,
    CampaignItem,
    EventKind,
    EventReview,
    Grant,
    GrantKind,
    ProvisioningEvent,
)
from saml_jit.review import campaigns, rules
from tests.conftest import person

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_KEYED = User.USERNAME_FIELD == "email"
SETTINGS = {
    "STAFF_GROUPS": ["admins"],
    "GROUP_MAP": {"ops": ["Ops"], "eng": ["Engineering"]},
    "PRIVILEGED_GROUPS": ["Ops"],
    "CREATE_GROUPS": True,
}


def account(name: str, **extra):
    fields = {User.USERNAME_FIELD: f"{name}@example.org" if EMAIL_KEYED else name}
    if not EMAIL_KEYED:
        fields["email"] = f"{name}@example.org"
    return User.objects.create_user(**fields, password="pw", **extra)


def reviewer(name: str = "carol"):
    user = account(name, is_staff=True)
    codenames = ["review_access", "view_campaign", "add_campaign", "view_campaignitem", "change_campaignitem"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def alice_logs_in(browser, groups=("admins", "ops", "eng")):
    browser.client.logout()
    return browser.login(attributes=person(isMemberOf=list(groups)))


@pytest.fixture
def alice(browser, settings):
    settings.SAML_JIT = SETTINGS
    assert alice_logs_in(browser).status_code == 302
    return User.objects.get(email="alice@example.org")


# ----------------------------------------------------------------------------- rules (pure)


@pytest.mark.parametrize(
    ("kind", "diff", "expected"),
    [
        ("created", {"is_staff": [None, True]}, True),
        ("updated", {"is_staff": [True, False]}, False),
        ("updated", {"is_superuser": [False, True]}, True),
        ("updated", {"groups": {"added": ["Ops"], "removed": []}}, True),
        ("updated", {"groups": {"added": ["Engineering"], "removed": ["Ops"]}}, False),
        ("linked", {}, True),
        ("approved", {}, True),
        ("reactivated", {}, True),
        ("login", {}, False),
        ("denied", {"is_staff": "garbage"}, False),
    ],
)
def test_needs_review(kind, diff, expected):
    assert rules.needs_review(kind, diff, {"Ops"}) is expected


def test_scope_and_who_may_decide():
    ops, eng, staff = (
        rules.Access("group", "Ops", True),
        rules.Access("group", "Engineering"),
        rules.Access("staff", privileged=True),
    )
    assert [rules.in_scope(a, rules.Scope(privileged_only=True)) for a in (ops, eng, staff)] == [True, False, True]
    assert [rules.in_scope(a, rules.Scope(groups=frozenset({"Engineering"}))) for a in (ops, eng, staff)] == [
        False,
        True,
        True,
    ]
    assert rules.may_decide(1, 2, is_open=True, is_reviewer=True) == ""
    assert rules.may_decide(1, 1, is_open=True, is_reviewer=True) == "own_access"
    assert rules.may_decide(1, 2, is_open=True, is_reviewer=False) == "not_a_reviewer"
    assert rules.may_decide(1, 2, is_open=False, is_reviewer=True) == "campaign_closed"


# ----------------------------------------------------------------------------- review debt flags


def test_privileged_changes_and_links_need_review(alice):
    created = ProvisioningEvent.objects.get(kind=EventKind.CREATED)
    assert created.review_required  # staff and Ops granted
    ProvisioningEvent.objects.filter(pk=created.pk)  # (read-only)


def test_a_plain_login_needs_no_review(alice, browser):
    alice_logs_in(browser)
    assert not ProvisioningEvent.objects.get(kind=EventKind.LOGIN).review_required


def test_mark_reviewed_records_who_and_never_ones_own(alice, browser):
    carol = reviewer()
    created = ProvisioningEvent.objects.get(kind=EventKind.CREATED)
    own = ProvisioningEvent.objects.create(kind=EventKind.LINKED, user=carol, review_required=True)
    carol.user_permissions.add(Permission.objects.get(codename="view_provisioningevent"))
    url = reverse("admin:saml_jit_provisioningevent_changelist")
    response = client_for(User.objects.get(pk=carol.pk)).post(
        url, {"action": "mark_reviewed", "_selected_action": [created.pk, own.pk]}, follow=True
    )
    assert response.status_code == 200
    assert list(EventReview.objects.values_list("event_id", "reviewed_by")) == [(created.pk, carol.get_username())]


def test_the_review_filter_lists_the_debt_then_the_reviewed(alice, browser):
    carol = reviewer()
    carol.user_permissions.add(Permission.objects.get(codename="view_provisioningevent"))
    client = client_for(User.objects.get(pk=carol.pk))
    created = ProvisioningEvent.objects.get(kind=EventKind.CREATED)
    alice_logs_in(browser)  # a plain login: nothing to review
    url = reverse("admin:saml_jit_provisioningevent_changelist")

    def listed(review):
        return {e.pk for e in client.get(url, {"review": review}).context["cl"].result_list}

    assert listed("due") == {created.pk}
    assert listed("done") == set()
    client.post(url, {"action": "mark_reviewed", "_selected_action": [created.pk]})
    assert listed("due") == set()
    assert listed("done") == {created.pk}
    page = client.get(reverse("admin:saml_jit_provisioningevent_change", args=[created.pk])).content.decode()
    assert f"Reviewed by {carol.get_username()}" in page
    login = ProvisioningEvent.objects.get(kind=EventKind.LOGIN)
    page = client.get(reverse("admin:saml_jit_provisioningevent_change", args=[login.pk])).content.decode()
    assert "No review needed" in page


def test_only_reviewers_mark_events_reviewed(alice):
    viewer = account("victor", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_provisioningevent"))
    client = client_for(User.objects.get(pk=viewer.pk))
    url = reverse("admin:saml_jit_provisioningevent_changelist")
    created = ProvisioningEvent.objects.get(kind=EventKind.CREATED)
    page = client.get(url, {"review": "due"})
    assert "mark_reviewed" not in page.content.decode()  # the action is not offered
    assert "Needs review" in page.content.decode()  # the filter is
    response = client.post(url, {"action": "mark_reviewed", "_selected_action": [created.pk]}, follow=True)
    assert response.status_code == 200
    assert not EventReview.objects.exists()


def test_a_second_mark_keeps_the_first_reviewer(alice):
    carol, dave = reviewer("carol"), reviewer("dave")
    created = ProvisioningEvent.objects.get(kind=EventKind.CREATED)
    url = reverse("admin:saml_jit_provisioningevent_changelist")
    for user in (carol, dave):
        user.user_permissions.add(Permission.objects.get(codename="view_provisioningevent"))
        client = client_for(User.objects.get(pk=user.pk))
        response = client.post(url, {"action": "mark_reviewed", "_selected_action": [created.pk]}, follow=True)
        assert response.status_code == 200
    assert list(EventReview.objects.values_list("reviewed_by", flat=True)) == [carol.get_username()]
    assert "0 events reviewed." in response.content.decode()


# ----------------------------------------------------------------------------- a campaign, end to end


def open_through_admin(client: Client, **scope) -> Campaign:
    data = {"name": "Q4 privileged access", "idp_entity_id": "", "privileged_only": "on", **scope}
    response = client.post(reverse("admin:saml_jit_campaign_add"), data)
    assert response.status_code == 302, response.content[:3000]
    return Campaign.objects.get()


def test_campaign_end_to_end(alice, browser):
    carol = reviewer()
    client = client_for(carol)
    campaign = open_through_admin(client)
    assert sorted((i.username, i.kind, i.group_name) for i in campaign.items.all()) == [
        (alice.get_username(), "group", "Ops"),
        (alice.get_username(), "staff", ""),
        (carol.get_username(), "staff", ""),  # local staff are reviewed too (every IdP, privileged only)
    ]
    items = {(i.kind, i.group_name): i for i in campaign.items.filter(user=alice)}
    assert items[("group", "Ops")].source == "saml" and items[("group", "Ops")].since is not None

    ops = items[("group", "Ops")]
    change = reverse("admin:saml_jit_campaignitem_change", args=[ops.pk])
    response = client.post(change, {"decision": "revoke", "comment": "left the ops rota"})
    assert response.status_code == 302, response.content[:3000]
    campaigns.decide(items[("staff", "")], "keep", reviewer=carol, comment="still on call")

    alice.refresh_from_db()
    assert not alice.groups.filter(name="Ops").exists() and alice.is_staff
    assert not Grant.objects.filter(user=alice, kind=GrantKind.GROUP, group__name="Ops").exists()
    assert AccessHold.objects.get().campaign == campaign
    reviewed = list(ProvisioningEvent.objects.filter(kind=EventKind.REVIEWED).order_by("id"))
    assert [(e.reason_code, e.actor) for e in reviewed] == [
        ("revoke", carol.get_username()),
        ("keep", carol.get_username()),
    ]
    assert "Q4 privileged access" in reviewed[0].message and reviewed[0].diff["groups"]["removed"] == ["Ops"]
    assert campaigns.progress(campaign).percent == 67

    page = client.get(reverse("admin:saml_jit_campaign_changelist")).content.decode()
    assert "2/3 (67%)" in page

    campaigns.close(campaign, actor=carol.get_username())
    with pytest.raises(campaigns.ReviewRefused, match="campaign_closed"):
        campaigns.decide(ops, "keep", reviewer=carol)
    assert client.post(change, {"decision": "keep", "comment": ""}).status_code == 403

    export = client.post(
        reverse("admin:saml_jit_campaign_changelist"), {"action": "export_csv", "_selected_action": [campaign.pk]}
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {(r["username"], r["group_name"], r["decision"], r["decided_by"], r["comment"]) for r in rows} == {
        (alice.get_username(), "Ops", "revoke", carol.get_username(), "left the ops rota"),
        (alice.get_username(), "", "keep", carol.get_username(), "still on call"),
        (carol.get_username(), "", "pending", "", ""),  # closed undecided: the evidence says so
    }
    assert {r["campaign_state"] for r in rows} == {"closed"}


def test_a_revoked_group_the_idp_asserts_again_stays_revoked_until_the_hold_is_lifted(alice, browser):
    carol = reviewer()
    campaign = campaigns.open_campaign("review", actor="carol", privileged_only=True)
    campaigns.decide(campaign.items.get(group_name="Ops"), "revoke", reviewer=carol)

    alice_logs_in(browser)  # the IdP still says "ops"
    alice.refresh_from_db()
    assert not alice.groups.filter(name="Ops").exists()
    assert (
        "held by an access review"
        in ProvisioningEvent.objects.filter(kind__in=["login", "updated"]).latest("id").message
    )

    client = client_for(account("root", is_staff=True, is_superuser=True))
    hold = AccessHold.objects.get()
    assert client.post(reverse("admin:saml_jit_accesshold_delete", args=[hold.pk]), {"post": "yes"}).status_code == 302
    assert ProvisioningEvent.objects.filter(kind=EventKind.REVIEWED, reason_code="hold_lifted").exists()
    alice_logs_in(browser)
    alice.refresh_from_db()
    assert alice.groups.filter(name="Ops").exists()


def test_a_revoked_staff_flag_is_held_too(alice, browser):
    carol = reviewer()
    campaign = campaigns.open_campaign("review", actor="carol", privileged_only=True)
    campaigns.decide(campaign.items.get(kind="staff", user=alice), "revoke", reviewer=carol)
    alice.refresh_from_db()
    assert not alice.is_staff
    alice_logs_in(browser)
    alice.refresh_from_db()
    assert not alice.is_staff


def test_nobody_reviews_their_own_access(alice, browser):
    carol = reviewer()
    Group.objects.get(name="Ops").user_set.add(carol)
    campaign = campaigns.open_campaign("review", actor="root", privileged_only=True)
    own = campaign.items.get(user=carol, group_name="Ops")
    with pytest.raises(campaigns.ReviewRefused, match="own_access"):
        campaigns.decide(own, "revoke", reviewer=carol)
    change = reverse("admin:saml_jit_campaignitem_change", args=[own.pk])
    assert client_for(carol).post(change, {"decision": "revoke", "comment": ""}).status_code == 403
    assert CampaignItem.objects.get(pk=own.pk).decision == "pending"


def test_only_reviewers_decide(alice):
    campaign = campaigns.open_campaign("review", actor="root", privileged_only=True)
    bystander = account("dave", is_staff=True)
    with pytest.raises(campaigns.ReviewRefused, match="not_a_reviewer"):
        campaigns.decide(campaign.items.first(), "keep", reviewer=bystander)


def test_scope_by_idp_and_groups(alice, browser):
    other = account("erin")
    other.groups.add(Group.objects.get(name="Engineering"))
    campaign = campaigns.open_campaign(
        "eng",
        actor="root",
        idp_entity_id=alice.saml_identities.get().idp_entity_id,
        groups=[Group.objects.get(name="Engineering")],
    )
    assert sorted((i.username, i.kind, i.group_name) for i in campaign.items.all()) == [
        (alice.get_username(), "group", "Engineering"),
        (alice.get_username(), "staff", ""),
    ]  # erin has no identity from that IdP; Ops is out of scope; staff is always reviewed
