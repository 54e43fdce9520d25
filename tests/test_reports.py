"""Each report of saml_jit.review.reports on crafted data, with the near-misses it must not report."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from saml_jit.models import AccountLifecycle, EventReview, FederatedIdentity, Grant, ProvisioningEvent
from saml_jit.review import reports
from tests.federation import IDP_A_ID, IDP_B_ID

pytestmark = pytest.mark.django_db

User = get_user_model()
EMAIL_IS_USERNAME = User.USERNAME_FIELD == "email"
RETIRED = "https://retired.example.com/idp"
_serial = count()


def account(
    name: str,
    email: str = "",
    *,
    idps: tuple[str, ...] = (),
    state: str = "active",
    created_by: str = "jit",
    lifecycle: bool = True,
    first_asserted: timedelta | None = timedelta(days=1),
    last_asserted: timedelta | None = None,
    password: str | None = None,
    **fields,
):
    """An account (``name`` is the username, or the email's local part with an email user model) and its rows."""
    email = email or f"{name}@example.org"
    key = {User.USERNAME_FIELD: email if EMAIL_IS_USERNAME else name}
    user = User._default_manager.create(**key, **({} if EMAIL_IS_USERNAME else {"email": email}), **fields)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    now = timezone.now()
    if lifecycle:
        AccountLifecycle.objects.create(user=user, state=state, created_by=created_by, source="saml")
    for idp in idps:
        first = now - first_asserted if first_asserted is not None else None
        last = now - last_asserted if last_asserted is not None else first
        FederatedIdentity.objects.create(
            user=user,
            idp_entity_id=idp,
            subject=f"subject-{next(_serial)}",
            bound_at=first or now,
            first_asserted_at=first,
            last_asserted_at=last,
        )
    return user


def listed(code: str, **kwargs) -> list[str]:
    report = reports.REPORTS[code]
    rows = [report.row(item) for item in report.rows(**kwargs)]
    assert report.count(**kwargs) == len(rows)
    return sorted({row["username"] for row in rows})


def username(user) -> str:
    return user.get_username()


# -- orphans ---------------------------------------------------------------


def test_no_evidence_lists_accounts_without_recent_evidence():
    stale = account("stale", idps=(IDP_A_ID,), first_asserted=timedelta(days=200), last_asserted=timedelta(days=95))
    # Near-misses: asserted recently by another IdP; touched by SCIM; bound recently but never asserted;
    # deprovisioned; local (no identity).
    other_idp = account("other", idps=(IDP_A_ID,), first_asserted=timedelta(days=200), last_asserted=timedelta(days=95))
    FederatedIdentity.objects.create(
        user=other_idp, idp_entity_id=IDP_B_ID, subject="b-1", last_asserted_at=timezone.now()
    )
    scim = account("scim", idps=(IDP_A_ID,), first_asserted=timedelta(days=200), last_asserted=timedelta(days=95))
    AccountLifecycle.objects.filter(user=scim).update(last_scim_at=timezone.now() - timedelta(days=3))
    account("fresh-binding", idps=(IDP_A_ID,), first_asserted=None)
    account("closed", idps=(IDP_A_ID,), state="deprovisioned", first_asserted=timedelta(days=300))
    account("local", created_by="local", idps=())
    assert listed("no_evidence") == [username(stale)]
    assert listed("no_evidence", days=100) == []


def test_no_evidence_counts_an_identity_never_asserted_from_its_binding():
    user = account("prebound", idps=(IDP_A_ID,), first_asserted=None)
    FederatedIdentity.objects.filter(user=user).update(bound_at=timezone.now() - timedelta(days=120))
    assert listed("no_evidence") == [username(user)]


def test_never_returned_lists_jit_accounts_seen_once():
    once = account("once", idps=(IDP_A_ID,), first_asserted=timedelta(days=40))
    # Near-misses: came back; came back through another IdP; first login too recent; created by SCIM;
    # deprovisioned.
    account("returned", idps=(IDP_A_ID,), first_asserted=timedelta(days=40), last_asserted=timedelta(days=2))
    elsewhere = account("elsewhere", idps=(IDP_A_ID,), first_asserted=timedelta(days=40))
    now = timezone.now()
    FederatedIdentity.objects.create(
        user=elsewhere, idp_entity_id=IDP_B_ID, subject="b-2", first_asserted_at=now, last_asserted_at=now
    )
    account("recent", idps=(IDP_A_ID,), first_asserted=timedelta(days=3))
    account("scim", idps=(IDP_A_ID,), created_by="scim", first_asserted=timedelta(days=40))
    account("closed", idps=(IDP_A_ID,), state="deprovisioned", first_asserted=timedelta(days=40))
    assert listed("never_returned") == [username(once)]
    assert listed("never_returned", days=50) == []


def test_unknown_idp_lists_identities_of_unconfigured_idps(settings):
    retired = account("retired", idps=(RETIRED,))
    # Near-misses: an IdP of the SP's metadata; an IdP configured only in SAML_JIT["IDPS"]; deprovisioned.
    account("metadata", idps=(IDP_A_ID,))
    account("settings-only", idps=("https://settings-only.example.org/idp",))
    account("closed", idps=(RETIRED,), state="deprovisioned")
    settings.SAML_JIT = {"IDPS": {"https://settings-only.example.org/idp": {}}}
    rows = [reports.identity_row(identity) for identity in reports.unknown_idp()]
    assert [(row["username"], row["idp_entity_id"]) for row in rows] == [(username(retired), RETIRED)]


def test_unknown_idp_lists_nothing_when_the_metadata_cannot_be_read(monkeypatch, caplog):
    account("retired", idps=(RETIRED,))

    def broken():
        raise RuntimeError("metadata unavailable")

    monkeypatch.setattr("saml_jit.saml.config.get_sp_config", broken)
    assert list(reports.unknown_idp()) == []
    assert "SP metadata could not be read" in caplog.text


# -- duplicates --------------------------------------------------------------


def test_duplicate_email_ignores_case_and_skips_deprovisioned_and_blank():
    first = account("dup1", "Dup@Example.org")
    second = account("dup2", "dup@example.ORG", idps=(IDP_A_ID,))
    # Near-misses: same local part at another domain; a deprovisioned account with a live one's email.
    account("other-domain", "dup@example.net")
    account("live", "gone@example.org")
    account("gone", "GONE@example.org", state="deprovisioned")
    assert listed("duplicate_email") == sorted([username(first), username(second)])
    rows = [reports.matched_account_row(user) for user in reports.duplicate_email()]
    assert {row["match"] for row in rows} == {"DUP@EXAMPLE.ORG"}


@pytest.mark.skipif(EMAIL_IS_USERNAME, reason="an email user model has no two accounts with a blank email")
def test_blank_emails_are_not_duplicates():
    account("blank1", "x@example.org")
    account("blank2", "y@example.org")
    User._default_manager.update(email="")
    assert listed("duplicate_email") == []
    assert listed("sso_and_local_email") == []


def test_duplicate_email_counts_an_account_without_a_lifecycle_row_as_live():
    first = account("row", "same@example.org")
    second = account("norow", "SAME@example.org", lifecycle=False)
    assert listed("duplicate_email") == sorted([username(first), username(second)])


def test_email_from_two_idps():
    a = account("from-a", "twice@example.org", idps=(IDP_A_ID,))
    b = account("from-b", "Twice@example.org", idps=(IDP_B_ID,))
    # Near-misses: two accounts of one IdP with one email; one account linked to both IdPs;
    # same local part at another domain from the other IdP; deprovisioned on the other IdP.
    account("same-idp-1", "one-idp@example.org", idps=(IDP_A_ID,))
    account("same-idp-2", "ONE-IDP@example.org", idps=(IDP_A_ID,))
    account("linked", "linked@example.org", idps=(IDP_A_ID, IDP_B_ID))
    account("domain-a", "alice@example.org", idps=(IDP_A_ID,))
    account("domain-b", "alice@example.net", idps=(IDP_B_ID,))
    account("closed-a", "left@example.org", idps=(IDP_A_ID,))
    account("closed-b", "LEFT@example.org", idps=(IDP_B_ID,), state="deprovisioned")
    assert listed("email_from_two_idps") == sorted([username(a), username(b)])
    rows = [reports.identity_row(identity) for identity in reports.email_from_two_idps()]
    assert sorted(row["idp_entity_id"] for row in rows) == sorted([IDP_A_ID, IDP_B_ID])


def test_sso_and_local_account_with_the_same_email():
    sso = account("sso", "both@example.org", idps=(IDP_A_ID,))
    local = account("local", "Both@Example.org", created_by="local")
    # Near-misses: two SSO accounts; two local accounts; a deprovisioned local one.
    account("sso1", "sso-only@example.org", idps=(IDP_A_ID,))
    account("sso2", "SSO-only@example.org", idps=(IDP_B_ID,))
    account("local1", "local-only@example.org")
    account("local2", "LOCAL-only@example.org")
    account("sso3", "closed@example.org", idps=(IDP_A_ID,))
    account("local3", "Closed@example.org", state="deprovisioned")
    assert listed("sso_and_local_email") == sorted([username(sso), username(local)])
    rows = {row["username"]: row["sso"] for row in map(reports.matched_account_row, reports.sso_and_local_email())}
    assert rows == {username(sso): True, username(local): False}


def test_same_name_and_local_part_from_two_idps():
    a = account("ann-a", "ann.lee@example.org", idps=(IDP_A_ID,), first_name="Ann", last_name="Lee")
    b = account("ann-b", "Ann.Lee@partner.example.net", idps=(IDP_B_ID,), first_name="ANN", last_name="lee")
    # Near-misses: same name, another local part; same local part, another name; same IdP;
    # no names at all; deprovisioned.
    account("bob-a", "bob@example.org", idps=(IDP_A_ID,), first_name="Bob", last_name="Ray")
    account("bob-b", "robert@example.net", idps=(IDP_B_ID,), first_name="Bob", last_name="Ray")
    account("cy-a", "cy@example.org", idps=(IDP_A_ID,), first_name="Cy", last_name="One")
    account("cy-b", "cy@example.net", idps=(IDP_B_ID,), first_name="Cy", last_name="Two")
    account("dee-1", "dee@example.org", idps=(IDP_A_ID,), first_name="Dee", last_name="Poe")
    account("dee-2", "dee@example.net", idps=(IDP_A_ID,), first_name="Dee", last_name="Poe")
    account("nameless-a", "anon@example.org", idps=(IDP_A_ID,))
    account("nameless-b", "anon@example.net", idps=(IDP_B_ID,))
    account("eve-a", "eve@example.org", idps=(IDP_A_ID,), first_name="Eve", last_name="Cho")
    account("eve-b", "eve@example.net", idps=(IDP_B_ID,), first_name="Eve", last_name="Cho", state="deprovisioned")
    assert listed("name_from_two_idps") == sorted([username(a), username(b)])


# -- ways around SSO ------------------------------------------------------------


def test_sso_bypass_reports():
    with_password = account("pw", idps=(IDP_A_ID,), password="correct horse")
    local_admin = account("admin", created_by="local", is_staff=True)
    # Near-misses: an SSO account without a password; a local account with one; an SSO staff member.
    account("nopw", idps=(IDP_A_ID,))
    account("local", created_by="local", password="correct horse")
    account("sso-staff", idps=(IDP_A_ID,), is_staff=True)
    assert listed("sso_with_password") == [username(with_password)]
    assert listed("privileged_without_identity") == [username(local_admin)]
    found = reports.sso_bypass()
    assert list(found.sso_with_password) == [with_password]
    assert found.inactive_sessions == 0


def test_inactive_sessions_lists_the_accounts(client):
    user = account("inactive", idps=(IDP_A_ID,))
    client.force_login(user)
    User._default_manager.filter(pk=user.pk).update(is_active=False)  # behind saml_jit's back
    rows = list(reports.REPORTS["inactive_sessions"].export_rows())
    assert [(row["username"], row["sessions"]) for row in rows] == [(username(user), 1)]
    assert reports.inactive_sessions() == 1


# -- approvals, privileges ------------------------------------------------------


def test_pending_approvals_oldest_first():
    newer = account("newer", state="pending_approval", idps=(IDP_A_ID,))
    older = account("older", state="pending_approval")
    AccountLifecycle.objects.filter(user=older).update(since=timezone.now() - timedelta(days=9))
    account("active")
    rows = [reports.pending_row(row) for row in reports.pending_approvals()]
    assert [row["username"] for row in rows] == [username(older), username(newer)]
    assert rows[0]["waiting_days"] == 9
    assert rows[1]["idps"] == IDP_A_ID


def test_expiring_privileges_within_24_hours():
    user = account("priv", idps=(IDP_A_ID,))
    other = account("other", idps=(IDP_A_ID,))
    admins = Group.objects.create(name="admins")
    now = timezone.now()
    soon = Grant.objects.create(user=user, idp_entity_id=IDP_A_ID, kind="staff", expires_at=now + timedelta(hours=23))
    Grant.objects.create(user=user, idp_entity_id=IDP_A_ID, group=admins, expires_at=now + timedelta(hours=25))
    Grant.objects.create(user=other, idp_entity_id=IDP_A_ID, kind="staff", expires_at=now - timedelta(minutes=1))
    Grant.objects.create(user=other, idp_entity_id=IDP_A_ID, kind="superuser")  # never expires
    assert list(reports.expiring_privileges(now=now)) == [soon]
    assert reports.grant_row(soon)["kind"] == "staff"
    assert reports.REPORTS["expiring_privileges"].count(now=now) == 1
    assert reports.REPORTS["expiring_privileges"].count(now=now + timedelta(hours=2)) == 2


# -- review debt -------------------------------------------------------------


def event(days_ago: float, *, review: bool = True, reviewed_days_ago: float | None = None) -> ProvisioningEvent:
    now = timezone.now()
    row = ProvisioningEvent.objects.create(
        kind="linked", created_at=now - timedelta(days=days_ago), review_required=review
    )
    if reviewed_days_ago is not None:
        EventReview.objects.create(
            event=row, reviewed_by="reviewer", reviewed_at=now - timedelta(days=reviewed_days_ago)
        )
    return row


def test_review_debt_counts_unreviewed_events_and_the_oldest():
    assert reports.review_debt() == reports.Debt(0, None)
    oldest = event(5)
    event(2)
    event(9, reviewed_days_ago=1)
    event(12, review=False)
    debt = reports.review_debt()
    assert debt.count == 2
    assert debt.oldest == oldest.created_at
    assert debt.age(oldest.created_at + timedelta(days=5)) == timedelta(days=5)
    assert reports.unreviewed().first() == oldest


def test_review_debt_over_time_is_due_at_the_end_of_each_day():
    from saml_jit.review import dashboard

    now = timezone.now()
    days = dashboard.window_days(10, now)
    # 20 days ago, reviewed 3 days ago: due on every day up to 4 days ago.
    event(20, reviewed_days_ago=3)
    # Created 6 days ago, never reviewed.
    event(6)
    # Created and reviewed on the same day, 5 days ago: never due at a day's end.
    event(5.0, reviewed_days_ago=5.0)
    # Created 12 days ago, reviewed 11 days ago: before the window.
    event(12, reviewed_days_ago=11)
    event(2, review=False)
    expected = []
    for day in days:
        end = dashboard.day_start(day + timedelta(days=1))
        due = ProvisioningEvent.objects.filter(review_required=True, created_at__lt=end).exclude(
            review__reviewed_at__lt=end
        )
        expected.append(due.count())
    assert reports.review_debt_over_time(days) == expected
    assert max(expected) == 2 and expected[-1] == 1


# -- the registry ---------------------------------------------------------------


def test_every_report_is_registered_with_a_title_and_fields_its_rows_have():
    assert set(reports.REPORTS) == {
        "no_evidence",
        "never_returned",
        "unknown_idp",
        "duplicate_email",
        "email_from_two_idps",
        "sso_and_local_email",
        "name_from_two_idps",
        "sso_with_password",
        "privileged_without_identity",
        "inactive_sessions",
        "pending_approvals",
        "expiring_privileges",
        "review_debt",
    }
    account("dup1", "a@example.org", idps=(IDP_A_ID,), password="pw", state="pending_approval")
    account("dup2", "A@example.org", idps=(IDP_B_ID,), created_by="local", is_staff=True)
    for report in reports.REPORTS.values():
        assert str(report.title) and str(report.description)
        assert set(report.fields) <= set(reports.FIELD_LABELS)
        for row in report.export_rows():
            assert set(row) == set(report.fields), report.code


def test_reports_keep_to_a_few_queries(django_assert_max_num_queries):
    spellings = ("dup{}@example.org", "Dup{}@example.org", "DUP{}@example.org")  # unique with an email user model
    for n in range(5):
        account(f"dup{n}", spellings[n // 2].format(n % 2), idps=(IDP_A_ID if n % 2 else IDP_B_ID,))
    for report in reports.REPORTS.values():
        with django_assert_max_num_queries(4):
            list(report.export_rows())
