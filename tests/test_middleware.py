"""Tests for :class:`saml_jit.middleware.GrantExpiryMiddleware`.

The middleware runs on real requests (test client, and the real
SessionMiddleware + AuthenticationMiddleware stack around a recording view);
grants are written directly so each case controls its expiry times. The
end-to-end path (a real SAML login, then expiry) is in ``test_grants.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saml_jit.middleware import RECHECK, SESSION_NEXT_CHECK, GrantExpiryMiddleware, schedule_next_check
from saml_jit.models import EventKind, Grant, GrantKind, ProvisioningEvent
from tests.federation import IDP_A, IDP_B

pytestmark = pytest.mark.django_db

User = get_user_model()
MIDDLEWARE = "saml_jit.middleware.GrantExpiryMiddleware"
PERM = "saml_jit.deploy"


@pytest.fixture
def with_middleware(settings):
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, MIDDLEWARE)
    settings.MIDDLEWARE = middleware


@pytest.fixture
def ops():
    group = Group.objects.create(name="Ops")
    perm = Permission.objects.create(
        codename="deploy", name="Can deploy", content_type=ContentType.objects.get_for_model(Grant)
    )
    group.permissions.add(perm)
    return group


def make_user(email="alice@example.org"):
    if User.USERNAME_FIELD == "email":
        return User.objects.create_user(email=email)
    return User.objects.create_user(username=email.partition("@")[0], email=email)


def grant(user, *, group=None, kind=GrantKind.GROUP, expires_in: float | None, idp=IDP_A.entity_id, apply=True):
    """A grant row as a login would leave it (and the membership/flag it gave)."""
    expires_at = None if expires_in is None else timezone.now() + timedelta(seconds=expires_in)
    row = Grant.objects.create(
        user=user, idp_entity_id=idp, kind=kind, group=group, assertion_id="_a1", expires_at=expires_at
    )
    if apply:
        if kind == GrantKind.GROUP:
            user.groups.add(group)
        else:
            setattr(user, f"is_{kind}", True)
            user.save()
    return row


def grant_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "saml_jit_grant" in q["sql"]]


class Recorder:
    """The view at the end of the stack: records what ``request.user`` says."""

    def __init__(self):
        self.seen: dict = {}

    def __call__(self, request):
        user = request.user
        self.seen = {
            "authenticated": user.is_authenticated,
            "is_staff": getattr(user, "is_staff", False),
            "deploy": user.has_perm(PERM),
            "groups": set(user.groups.values_list("name", flat=True)) if user.is_authenticated else set(),
        }
        return HttpResponse("ok")


def touch_user(get_response):
    """A middleware that reads request.user before GrantExpiryMiddleware runs."""

    def middleware(request):
        request.user.has_perm(PERM)
        return get_response(request)

    return middleware


def run(request, view, *inner):
    """Session + authentication + ``inner`` middlewares + view, as Django chains them."""
    handler = view
    for factory in reversed((AuthenticationMiddleware, *inner)):
        handler = factory(handler)
    return SessionMiddleware(handler)(request)


def signed_in_request(client: Client, path="/"):
    request = RequestFactory().get(path)
    request.COOKIES.update({key: morsel.value for key, morsel in client.cookies.items()})
    return request


# --------------------------------------------------------------------------


def test_unauthenticated_request_is_untouched(client, with_middleware):
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    assert response.status_code == 200
    assert grant_queries(captured) == []
    assert SESSION_NEXT_CHECK not in client.session


def test_request_without_session_is_untouched():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    middleware = GrantExpiryMiddleware(lambda r: HttpResponse("ok"))
    with CaptureQueriesContext(connection) as captured:
        assert middleware(request).status_code == 200
    assert captured.captured_queries == []


def test_anonymous_session_is_untouched(client, with_middleware):
    session = client.session
    session["something"] = "else"
    session.save()
    with CaptureQueriesContext(connection) as captured:
        client.get("/")
    assert grant_queries(captured) == []
    assert SESSION_NEXT_CHECK not in client.session


def test_session_without_the_key_triggers_a_check(client, ops, with_middleware):
    user = make_user()
    row = grant(user, group=ops, expires_in=60)
    client.force_login(user)
    assert SESSION_NEXT_CHECK not in client.session

    before = timezone.now()
    with CaptureQueriesContext(connection) as captured:
        client.get("/")

    assert len(grant_queries(captured)) == 1
    next_check = datetime.fromisoformat(client.session[SESSION_NEXT_CHECK])
    assert next_check == row.expires_at  # sooner than RECHECK
    assert before < next_check


def test_next_check_is_at_most_recheck_away(client, ops, with_middleware):
    user = make_user()
    grant(user, group=ops, expires_in=8 * 3600)
    client.force_login(user)
    before = timezone.now()
    client.get("/")
    next_check = datetime.fromisoformat(client.session[SESSION_NEXT_CHECK])
    assert before + timedelta(seconds=RECHECK) <= next_check <= timezone.now() + timedelta(seconds=RECHECK)


def test_user_without_expiring_grants_is_rechecked_later(client, ops, with_middleware):
    user = make_user()
    grant(user, group=ops, expires_in=None)
    client.force_login(user)
    client.get("/")
    next_check = datetime.fromisoformat(client.session[SESSION_NEXT_CHECK])
    assert next_check > timezone.now() + timedelta(seconds=RECHECK - 5)
    with CaptureQueriesContext(connection) as captured:
        client.get("/")
    assert grant_queries(captured) == []


def test_no_query_until_the_next_check(client, ops, with_middleware):
    user = make_user()
    grant(user, group=ops, expires_in=120)
    client.force_login(user)
    client.get("/")
    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            client.get("/")
    assert grant_queries(captured) == []


def test_expired_grant_is_removed_and_request_user_reflects_it(client, ops):
    user = make_user()
    grant(user, group=ops, expires_in=-1)
    grant(user, kind=GrantKind.STAFF, expires_in=-1)
    kept = Group.objects.create(name="Engineering")
    grant(user, group=kept, expires_in=None)
    client.force_login(user)
    view = Recorder()

    response = run(signed_in_request(client), view, GrantExpiryMiddleware)

    assert response.status_code == 200
    assert view.seen == {"authenticated": True, "is_staff": False, "deploy": False, "groups": {"Engineering"}}
    fresh = User.objects.get(pk=user.pk)
    assert not fresh.is_staff
    assert not fresh.has_perm(PERM)
    assert set(Grant.objects.values_list("group__name", flat=True)) == {"Engineering"}
    expired = ProvisioningEvent.objects.filter(kind=EventKind.EXPIRED)
    assert expired.count() == 2
    assert {e.user_id for e in expired} == {user.pk}


def test_live_grant_counts_in_the_view(client, ops):
    user = make_user()
    grant(user, group=ops, expires_in=60)
    grant(user, kind=GrantKind.STAFF, expires_in=60)
    client.force_login(user)
    view = Recorder()
    run(signed_in_request(client), view, GrantExpiryMiddleware)
    assert view.seen == {"authenticated": True, "is_staff": True, "deploy": True, "groups": {"Ops"}}
    assert not ProvisioningEvent.objects.exists()


def test_expiry_through_the_client_at_the_grant_expiry(client, ops, with_middleware):
    user = make_user()
    row = grant(user, group=ops, expires_in=30)
    client.force_login(user)
    client.get("/")  # schedules the next check at the expiry
    with mock.patch("django.utils.timezone.now", return_value=row.expires_at - timedelta(microseconds=1)):
        client.get("/")
    assert Grant.objects.exists()
    with (
        mock.patch("django.utils.timezone.now", return_value=row.expires_at),
        CaptureQueriesContext(connection) as captured,
    ):
        client.get("/")
    assert not Grant.objects.exists()
    assert not User.objects.get(pk=user.pk).groups.exists()
    assert grant_queries(captured)[0].lstrip().upper().startswith("SELECT")
    # Nothing left to expire: the next check is RECHECK away again.
    next_check = datetime.fromisoformat(client.session[SESSION_NEXT_CHECK])
    assert next_check == row.expires_at + timedelta(seconds=RECHECK)


def test_membership_held_by_another_idp_survives(client, ops):
    user = make_user()
    grant(user, group=ops, expires_in=-1, idp=IDP_A.entity_id)
    grant(user, group=ops, expires_in=None, idp=IDP_B.entity_id, apply=False)
    client.force_login(user)
    view = Recorder()
    run(signed_in_request(client), view, GrantExpiryMiddleware)
    assert view.seen["deploy"] is True
    assert list(Grant.objects.values_list("idp_entity_id", flat=True)) == [IDP_B.entity_id]


def test_only_the_signed_in_users_grants_are_checked(client, ops):
    alice, bob = make_user(), make_user("bob@example.org")
    grant(bob, group=ops, expires_in=-1)
    client.force_login(alice)
    run(signed_in_request(client), Recorder(), GrantExpiryMiddleware)
    assert Grant.objects.filter(user=bob).exists()  # left for the cron command


def test_deleted_user_in_session_is_harmless(client, ops, with_middleware):
    user = make_user()
    client.force_login(user)
    user.delete()
    assert client.get("/").status_code == 200


def test_request_user_loaded_earlier_in_the_request_reflects_the_expiry(client, ops):
    user = make_user()
    grant(user, group=ops, expires_in=-1)
    grant(user, kind=GrantKind.STAFF, expires_in=-1)
    client.force_login(user)
    view = Recorder()
    run(signed_in_request(client), view, touch_user, GrantExpiryMiddleware)
    assert not Grant.objects.exists()  # the expiry itself happened ...
    assert view.seen["is_staff"] is False  # ... but request.user must say so too
    assert view.seen["deploy"] is False


def test_schedule_next_check():
    now = timezone.now()
    request = RequestFactory().get("/")
    request.session = {}
    schedule_next_check(request, None, now)
    assert datetime.fromisoformat(request.session[SESSION_NEXT_CHECK]) == now + timedelta(seconds=RECHECK)
    schedule_next_check(request, now + timedelta(seconds=10), now)
    assert datetime.fromisoformat(request.session[SESSION_NEXT_CHECK]) == now + timedelta(seconds=10)
    schedule_next_check(request, now + timedelta(days=1), now)
    assert datetime.fromisoformat(request.session[SESSION_NEXT_CHECK]) == now + timedelta(seconds=RECHECK)
