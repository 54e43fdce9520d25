"""Reports over accounts: orphans, duplicates, ways around SSO, approvals, expiring privileges, review debt.

Each report is one function returning a queryset (or, for the one that has
to decode sessions, an iterator), and one :class:`Report` in :data:`REPORTS`
(its code, title, description, that function and its export fields), so the
admin's report pages, the dashboard and the command line count and list the
same rows. No report reads every user into Python.

What counts, and the near-misses that do not:

* **Orphans** (deprovisioned accounts are closed already and never listed):
  ``no_evidence`` — bound to an IdP, and no assertion (or binding, for an
  identity never asserted) from any IdP and no SCIM touch for ``days``
  (default :data:`ORPHAN_DAYS`); ``never_returned`` — created by a JIT first
  login at least ``days`` ago (default :data:`NEVER_RETURNED_DAYS`) and not
  asserted again since, by any IdP; ``unknown_idp`` — identities of an IdP
  that is neither in the SP's metadata nor in ``SAML_JIT["IDPS"]``.
* **Duplicates**, among live accounts (a pair where one account is
  deprovisioned is *not* a duplicate: the closed account is kept for the
  audit trail, and listing it would flag every person who left and came
  back): ``duplicate_email`` — the same email ignoring case on two accounts
  (blank emails never match); ``email_from_two_idps`` — the same email on
  accounts bound to two different IdPs; ``sso_and_local_email`` — an SSO
  account (with an identity) and a local one (without) sharing an email;
  ``name_from_two_idps`` — accounts of two different IdPs with the same first
  name, last name and email local part, ignoring case (the domain may differ;
  accounts without both names are skipped). The same local part at another
  domain, or the same name with another local part, is not a duplicate.
* **Ways around SSO**: ``sso_with_password``, ``privileged_without_identity``
  and ``inactive_sessions`` (see :func:`sso_bypass`).
* ``pending_approvals`` oldest first; ``expiring_privileges`` — grants that
  expire within the next 24 hours (not those already expired); and
  ``review_debt`` — events that need review and have none, oldest first.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router, transaction
from django.db.models import CharField, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Concat, Lower, StrIndex, Substr, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import lifecycle as rules
from ..conf import app_settings
from ..models import AccountLifecycle, FederatedIdentity, Grant, ProvisioningEvent
from ..provisioning.lifecycle import DATABASE_SESSION_ENGINES

logger = logging.getLogger(__name__)

#: ``no_evidence``: days without an assertion or SCIM touch.
ORPHAN_DAYS = 90
#: ``never_returned``: days since the first (and only) login.
NEVER_RETURNED_DAYS = 30
#: ``expiring_privileges``: how far ahead.
EXPIRING_WITHIN = timedelta(hours=24)
#: Separates the parts of a composite match key (control characters never reach a name or an email).
_SEP = "\x1f"


# ----------------------------------------------------------------------------
# Accounts: what every account report starts from


def _users() -> QuerySet[Any]:
    return get_user_model()._default_manager.all()


def _has_field(name: str) -> bool:
    try:
        get_user_model()._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _email() -> str | None:
    name = get_user_model().get_email_field_name()
    return name if _has_field(name) else None


def live_users(prefix: str = "") -> Q:
    """Not deprovisioned (on the user model, or through ``prefix`` such as ``user__``)."""
    return ~Q(**{f"{prefix}saml_lifecycle__state": rules.DEPROVISIONED})


def _identities(**filters: Any) -> QuerySet[FederatedIdentity]:
    return FederatedIdentity.objects.filter(user_id=OuterRef("pk"), **filters)


def _accounts(users: QuerySet[Any]) -> QuerySet[Any]:
    """What a report lists: with the lifecycle and identities its rows show."""
    return users.select_related("saml_lifecycle").prefetch_related("saml_identities")


@contextmanager
def planned_once() -> Iterator[None]:
    """A transaction for one-off aggregates over every account: on PostgreSQL, without the JIT compiler.

    Their cost estimates pass ``jit_above_cost``, and compiling the plan took
    longer than running it (3.5 of 4.5 s for ``sso_and_local_email`` with
    100,000 accounts); ``SET LOCAL`` ends with the transaction.
    """
    alias = router.db_for_read(get_user_model())
    with transaction.atomic(using=alias):
        connection = connections[alias]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


# ----------------------------------------------------------------------------
# Orphans


def no_evidence(*, days: int = ORPHAN_DAYS, now: datetime | None = None) -> QuerySet[Any]:
    """Accounts bound to an IdP with no evidence from any IdP (assertion, binding, SCIM) for ``days``.

    The dormancy sweep's rule (:func:`saml_jit.provisioning.dormancy.fresh_evidence`: an identity's
    last assertion, or its binding if never asserted), as one GROUP BY over the identities rather
    than a correlated look-up per account.
    """
    cutoff = (now or timezone.now()) - timedelta(days=days)
    stale = (
        FederatedIdentity.objects.order_by()
        .values("user_id")
        .annotate(latest=Max(Coalesce("last_asserted_at", "bound_at")))
        .filter(latest__lt=cutoff)
        .values("user_id")
    )
    users = _users().filter(live_users(), pk__in=stale).exclude(saml_lifecycle__last_scim_at__gte=cutoff)
    return _accounts(users.order_by("pk"))


def never_returned(*, days: int = NEVER_RETURNED_DAYS, now: datetime | None = None) -> QuerySet[Any]:
    """JIT-created accounts whose first login is ``days`` old and was the last assertion from any IdP."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    once = (
        FederatedIdentity.objects.filter(first_asserted_at__isnull=False)
        .order_by()
        .values("user_id")
        .annotate(first_seen=Min("first_asserted_at"), last_seen=Max("last_asserted_at"))
        .filter(first_seen__lt=cutoff, last_seen=F("first_seen"))
        .values("user_id")
    )
    users = _users().filter(live_users(), pk__in=once, saml_lifecycle__created_by="jit")
    return _accounts(users.order_by("pk"))


def configured_idps() -> frozenset[str] | None:
    """Entity IDs in the SP's metadata and in ``SAML_JIT["IDPS"]``; None when the metadata cannot be read."""
    from ..saml.config import get_sp_config

    try:
        in_metadata = get_sp_config().metadata.identity_providers()
    except Exception:
        logger.warning("saml_jit reports: the SP metadata could not be read; unknown_idp lists nothing")
        return None
    return frozenset(in_metadata) | frozenset(app_settings.IDPS)


def unknown_idp() -> QuerySet[FederatedIdentity]:
    """Identities (of live accounts) bound to an IdP that is no longer configured."""
    known = configured_idps()
    if known is None:
        return FederatedIdentity.objects.none()
    identities = FederatedIdentity.objects.filter(live_users("user__")).exclude(idp_entity_id__in=sorted(known))
    return identities.select_related("user", "user__saml_lifecycle").order_by("idp_entity_id", "user_id")


# ----------------------------------------------------------------------------
# Duplicates


def _repeated(rows: QuerySet[Any], **having: Any) -> QuerySet[Any]:
    """The ``match`` values of ``rows`` whose group passes ``having`` (GROUP BY match HAVING …)."""
    return rows.order_by().values("match").annotate(**having).filter(**{f"{k}__gt": 1 for k in having}).values("match")


def _with_email(email: str) -> QuerySet[Any]:
    """Live accounts with an email, annotated with ``match`` = ``UPPER(email)`` (the indexed expression)."""
    users = _users().filter(live_users()).exclude(**{email: ""}).exclude(**{f"{email}__isnull": True})
    return users.annotate(match=Upper(email))


def _shared_emails(email: str) -> QuerySet[Any]:
    """``UPPER(email)`` values on two live accounts or more: what every email report narrows down to first."""
    return _repeated(_with_email(email), n=Count("pk"))


def duplicate_email() -> QuerySet[Any]:
    """Live accounts sharing an email with another live account, ignoring case (``UPPER(email)``, indexed)."""
    email = _email()
    if email is None:
        return _users().none()
    users = _with_email(email)
    return _accounts(users.filter(match__in=_shared_emails(email)).order_by("match", "pk"))


def email_from_two_idps() -> QuerySet[FederatedIdentity]:
    """Identities of two different IdPs on two different live accounts with the same email."""
    email = _email()
    if email is None:
        return FederatedIdentity.objects.none()
    identities = FederatedIdentity.objects.filter(live_users("user__")).annotate(match=Upper(f"user__{email}"))
    identities = identities.filter(match__in=_shared_emails(email))
    repeated = _repeated(
        identities, idps=Count("idp_entity_id", distinct=True), accounts=Count("user_id", distinct=True)
    )
    return _identity_rows(identities.filter(match__in=repeated))


def _identity_rows(identities: QuerySet[FederatedIdentity]) -> QuerySet[FederatedIdentity]:
    ordered = identities.order_by(F("match").asc(), "user_id", "idp_entity_id")  # ``match``: an annotation
    return ordered.select_related("user", "user__saml_lifecycle")


def sso_and_local_email() -> QuerySet[Any]:
    """Live accounts with an identity and live accounts without one that share an email."""
    email = _email()
    if email is None:
        return _users().none()
    users = _with_email(email).filter(match__in=_shared_emails(email)).annotate(sso=Exists(_identities()))
    repeated = (
        users.order_by()
        .values("match")
        .annotate(sso_n=Count("pk", filter=Q(sso=True)), local_n=Count("pk", filter=Q(sso=False)))
        .filter(sso_n__gt=0, local_n__gt=0)
        .values("match")
    )
    return _accounts(users.filter(match__in=repeated).order_by("match", "pk"))


def name_from_two_idps() -> QuerySet[FederatedIdentity]:
    """Identities of two different IdPs on two accounts with the same names and email local part (any case)."""
    email = _email()
    if email is None or not (_has_field("first_name") and _has_field("last_name")):
        return FederatedIdentity.objects.none()
    user_email = f"user__{email}"
    local_part = Substr(user_email, 1, StrIndex(user_email, Value("@")) - 1)
    key = Concat(
        Lower("user__first_name"), Value(_SEP), Lower("user__last_name"), Value(_SEP), Lower(local_part),
        output_field=CharField(),
    )  # fmt: skip
    identities = (
        FederatedIdentity.objects.filter(live_users("user__"), **{f"{user_email}__contains": "@"})
        .exclude(user__first_name="")
        .exclude(user__last_name="")
        .annotate(match=key)
    )
    repeated = _repeated(
        identities, idps=Count("idp_entity_id", distinct=True), accounts=Count("user_id", distinct=True)
    )
    return _identity_rows(identities.filter(match__in=repeated))


# ----------------------------------------------------------------------------
# Ways around SSO


@dataclass(frozen=True)
class SsoBypass:
    """Ways around single sign-on."""

    #: Accounts bound to an IdP that also have a usable password.
    sso_with_password: QuerySet[Any]
    #: Staff and superusers with no federated identity (local administrators).
    privileged_without_identity: QuerySet[Any]
    #: Sessions of accounts that are not active: always 0 (None: the session engine cannot be listed).
    inactive_sessions: int | None


def sso_with_password() -> QuerySet[Any]:
    usable = ~Q(password__startswith=UNUSABLE_PASSWORD_PREFIX) & ~Q(password="")
    return _accounts(_users().filter(usable, pk__in=_bound_user_ids()).order_by("pk"))


def privileged_without_identity() -> QuerySet[Any]:
    users = _users().filter(Q(is_staff=True) | Q(is_superuser=True)).exclude(pk__in=_bound_user_ids())
    return _accounts(users.order_by("pk"))


def _bound_user_ids() -> Any:
    return FederatedIdentity.objects.values("user_id")


def _session_owners() -> list[str] | None:
    """The owners (user pks, as strings) of unexpired database sessions; None if sessions are not in the database."""
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return None
    from django.contrib.sessions.models import Session

    sessions = Session.objects.filter(expire_date__gt=timezone.now()).iterator()
    return [str(owner) for s in sessions if (owner := s.get_decoded().get(SESSION_KEY)) is not None]


def inactive_session_owners() -> Iterator[tuple[Any, int]]:
    """(account, number of live sessions) for accounts that are not active (one pass over the sessions)."""
    owners = _session_owners() or []
    counts: dict[str, int] = {}
    for owner in owners:
        counts[owner] = counts.get(owner, 0) + 1
    if not counts:
        return
    users = _accounts(_users().filter(pk__in=set(counts), is_active=False).order_by("pk"))
    for user in users:
        yield user, counts[str(user.pk)]


def inactive_sessions() -> int | None:
    """Unexpired database sessions of accounts that are not active (one pass over the sessions)."""
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return None
    return sum(count for _, count in inactive_session_owners())


def sso_bypass() -> SsoBypass:
    return SsoBypass(sso_with_password(), privileged_without_identity(), inactive_sessions())


# ----------------------------------------------------------------------------
# Approvals and privileges


def pending_approvals() -> QuerySet[AccountLifecycle]:
    """Accounts waiting for an administrator's approval, oldest first (the ``(state, since)`` index)."""
    rows = AccountLifecycle.objects.filter(state=rules.PENDING).order_by("since", "pk")
    return rows.select_related("user").prefetch_related("user__saml_identities")


def expiring_privileges(*, now: datetime | None = None) -> QuerySet[Grant]:
    """Grants that expire within :data:`EXPIRING_WITHIN` (the ``expires_at`` index); expired ones are not listed."""
    now = now or timezone.now()
    grants = Grant.objects.filter(expires_at__gt=now, expires_at__lte=now + EXPIRING_WITHIN)
    return grants.select_related("user", "group").order_by("expires_at", "pk")


# ----------------------------------------------------------------------------
# Review debt


@dataclass(frozen=True)
class Debt:
    """Events that need review and have none: how many, and since when the oldest waits."""

    count: int
    oldest: datetime | None

    def age(self, now: datetime | None = None) -> timedelta | None:
        return None if self.oldest is None else (now or timezone.now()) - self.oldest


def unreviewed() -> QuerySet[ProvisioningEvent]:
    """Events that need review and have none, oldest first (the partial index on ``review_required``)."""
    return ProvisioningEvent.objects.filter(review_required=True, review__isnull=True).order_by("created_at", "pk")


def review_debt() -> Debt:
    due = unreviewed()
    oldest = due.values_list("created_at", flat=True).first()
    return Debt(due.count() if oldest is not None else 0, oldest)


def review_debt_over_time(days: list[date], tz: Any = None) -> list[int]:
    """For each of ``days`` (ascending): how many events were due for review at the end of that day.

    Due at the end of a day: created by then and not reviewed by then. One
    query reads (created, reviewed) of the events that need review (the
    partial index) and were not reviewed before the first day; each is due
    from the day it was created until the day it was reviewed.
    """
    if not days:
        return []
    tz = tz or timezone.get_default_timezone()
    # In UTC, as the database returns them: comparing across time zones costs an offset look-up each time.
    ends = [
        datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz).astimezone(dt_timezone.utc)
        for day in days
    ]
    start = ends[0] - timedelta(days=1)
    due = ProvisioningEvent.objects.filter(review_required=True, created_at__lt=ends[-1]).filter(
        Q(review__isnull=True) | Q(review__reviewed_at__gte=start)
    )
    change = [0] * (len(ends) + 1)
    for created, reviewed in due.order_by().values_list("created_at", "review__reviewed_at"):
        change[bisect_right(ends, created)] += 1
        change[bisect_right(ends, reviewed) if reviewed is not None else len(ends)] -= 1
    return list(accumulate(change[:-1]))


# ----------------------------------------------------------------------------
# Rows: what a report's list and export show


def _state(user: Any) -> str:
    row = getattr(user, "saml_lifecycle", None)
    if row is not None:
        return row.state
    return rules.ACTIVE if getattr(user, "is_active", True) else rules.DEPROVISIONED


def _created_by(user: Any) -> str:
    row = getattr(user, "saml_lifecycle", None)
    return (row.created_by if row is not None else "") or "local"


def _email_of(user: Any) -> str:
    return getattr(user, user.get_email_field_name(), "") or ""


def account_row(user: Any) -> dict[str, Any]:
    """One account: who, its state and origin, its IdPs and the last evidence from them."""
    identities = list(user.saml_identities.all())
    asserted = [i.last_asserted_at for i in identities if i.last_asserted_at]
    row = getattr(user, "saml_lifecycle", None)
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "email": _email_of(user),
        "state": _state(user),
        "created_by": _created_by(user),
        "idps": " ".join(sorted({i.idp_entity_id for i in identities})),
        "last_asserted_at": max(asserted) if asserted else None,
        "last_scim_at": getattr(row, "last_scim_at", None),
    }


ACCOUNT_FIELDS = ("user_id", "username", "email", "state", "created_by", "idps", "last_asserted_at", "last_scim_at")


def matched_account_row(user: Any) -> dict[str, Any]:
    return {"match": user.match, **account_row(user), **({"sso": user.sso} if hasattr(user, "sso") else {})}


def privileged_row(user: Any) -> dict[str, Any]:
    return {**account_row(user), "is_staff": user.is_staff, "is_superuser": user.is_superuser}


def identity_row(identity: FederatedIdentity) -> dict[str, Any]:
    user = identity.user
    return {
        **({"match": identity.match} if hasattr(identity, "match") else {}),
        "user_id": user.pk,
        "username": user.get_username(),
        "email": _email_of(user),
        "state": _state(user),
        "idp_entity_id": identity.idp_entity_id,
        "subject": identity.subject,
        "bound_at": identity.bound_at,
        "last_asserted_at": identity.last_asserted_at,
    }


IDENTITY_FIELDS = ("user_id", "username", "email", "state", "idp_entity_id", "subject", "bound_at", "last_asserted_at")


def pending_row(row: AccountLifecycle) -> dict[str, Any]:
    user = row.user
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "email": _email_of(user),
        "since": row.since,
        "waiting_days": (timezone.now() - row.since).days,
        "created_by": row.created_by or "local",
        "idps": " ".join(sorted({i.idp_entity_id for i in user.saml_identities.all()})),
    }


def grant_row(grant: Grant) -> dict[str, Any]:
    return {
        "user_id": grant.user_id,
        "username": grant.user.get_username(),
        "kind": grant.kind,
        "group": grant.group.name if grant.group_id and grant.group else "",
        "idp_entity_id": grant.idp_entity_id,
        "granted_at": grant.granted_at,
        "last_asserted_at": grant.last_asserted_at,
        "expires_at": grant.expires_at,
    }


def event_row(event: ProvisioningEvent) -> dict[str, Any]:
    return {
        "event_id": event.pk,
        "created_at": event.created_at,
        "kind": event.kind,
        "user_id": event.user_id,
        "username": event.username,
        "idp_entity_id": event.idp_entity_id,
        "reason_code": event.reason_code,
        "waiting_days": (timezone.now() - event.created_at).days,
    }


def session_row(pair: tuple[Any, int]) -> dict[str, Any]:
    user, sessions = pair
    return {**account_row(user), "sessions": sessions}


# ----------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Report:
    """One report: what the admin, the dashboard and the command line share.

    ``query(now=…, days=…)`` returns the rows (a queryset, or an iterator);
    ``row`` turns one into the dict that lists and exports show. ``indexed``
    reports are answered from an index and counted on every dashboard view;
    the others read every account (or identity) and the dashboard shows
    their last count (:func:`saml_jit.review.dashboard.account_counts`).
    ``on_dashboard`` False: counted only on the reports page.
    """

    code: str
    title: Any
    description: Any
    query: Callable[..., Iterable[Any]]
    fields: tuple[str, ...]
    row: Callable[[Any], dict[str, Any]]
    group: Any
    #: The default of the report's ``days`` parameter (None: it has none).
    days: int | None = None
    indexed: bool = False
    on_dashboard: bool = True

    def rows(self, *, now: datetime | None = None, days: int | None = None) -> Iterable[Any]:
        now = now or timezone.now()
        return self.query(now=now, days=days or self.days)

    def count(self, *, now: datetime | None = None, days: int | None = None) -> int:
        rows = self.rows(now=now, days=days)
        return rows.count() if isinstance(rows, QuerySet) else sum(1 for _ in rows)

    def export_rows(self, *, now: datetime | None = None, days: int | None = None) -> Iterator[dict[str, Any]]:
        rows = self.rows(now=now, days=days)
        for item in rows.iterator(chunk_size=2000) if isinstance(rows, QuerySet) else rows:
            yield self.row(item)


ORPHANS, DUPLICATES, SSO, ACCESS = _("Orphaned accounts"), _("Duplicate records"), _("Ways around SSO"), _("Access")
MATCHED_FIELDS = ("match", *ACCOUNT_FIELDS)
MATCHED_IDENTITY_FIELDS = ("match", *IDENTITY_FIELDS)


def _plain(function: Callable[[], Iterable[Any]]) -> Callable[..., Iterable[Any]]:
    return lambda *, now, days: function()


REPORTS: dict[str, Report] = {
    report.code: report
    for report in (
        Report(
            "no_evidence",
            _("No IdP evidence"),
            _("Accounts bound to an IdP with no assertion, binding or SCIM touch from any IdP for N days."),
            lambda *, now, days: no_evidence(days=days, now=now),
            ACCOUNT_FIELDS,
            account_row,
            ORPHANS,
            days=ORPHAN_DAYS,
        ),
        Report(
            "never_returned",
            _("Never returned"),
            _("Accounts a JIT first login created at least N days ago that no IdP asserted again since."),
            lambda *, now, days: never_returned(days=days, now=now),
            ACCOUNT_FIELDS,
            account_row,
            ORPHANS,
            days=NEVER_RETURNED_DAYS,
        ),
        Report(
            "unknown_idp",
            _("Bound to an IdP no longer configured"),
            _("Identities from an IdP that is neither in the SP metadata nor in SAML_JIT['IDPS']."),
            _plain(unknown_idp),
            IDENTITY_FIELDS,
            identity_row,
            ORPHANS,
        ),
        Report(
            "duplicate_email",
            _("Same email on several accounts"),
            _("Accounts whose emails are equal ignoring case (deprovisioned accounts and blank emails excluded)."),
            _plain(duplicate_email),
            MATCHED_FIELDS,
            matched_account_row,
            DUPLICATES,
        ),
        Report(
            "email_from_two_idps",
            _("Same email from two IdPs"),
            _("Accounts bound to different IdPs that carry the same email."),
            _plain(email_from_two_idps),
            MATCHED_IDENTITY_FIELDS,
            identity_row,
            DUPLICATES,
        ),
        Report(
            "sso_and_local_email",
            _("SSO and local account with the same email"),
            _("An account with a federated identity and one without share an email."),
            _plain(sso_and_local_email),
            (*MATCHED_FIELDS, "sso"),
            matched_account_row,
            DUPLICATES,
        ),
        Report(
            "name_from_two_idps",
            _("Same name and email local part from two IdPs"),
            _("Accounts of different IdPs with equal first name, last name and email local part, ignoring case."),
            _plain(name_from_two_idps),
            MATCHED_IDENTITY_FIELDS,
            identity_row,
            DUPLICATES,
        ),
        Report(
            "sso_with_password",
            _("SSO accounts with a usable password"),
            _("Accounts bound to an IdP that could also sign in with a password."),
            _plain(sso_with_password),
            ACCOUNT_FIELDS,
            account_row,
            SSO,
        ),
        Report(
            "privileged_without_identity",
            _("Staff and superusers without an identity"),
            _("Local administrators: staff or superuser accounts with no federated identity."),
            _plain(privileged_without_identity),
            (*ACCOUNT_FIELDS, "is_staff", "is_superuser"),
            privileged_row,
            SSO,
        ),
        Report(
            "inactive_sessions",
            _("Sessions of inactive accounts"),
            _("Accounts that are not active but hold an unexpired database session (always none)."),
            _plain(inactive_session_owners),
            (*ACCOUNT_FIELDS, "sessions"),
            session_row,
            SSO,
            on_dashboard=False,
        ),
        Report(
            "pending_approvals",
            _("Pending approvals"),
            _("Accounts waiting for an administrator's approval, oldest first."),
            _plain(pending_approvals),
            ("user_id", "username", "email", "since", "waiting_days", "created_by", "idps"),
            pending_row,
            ACCESS,
            indexed=True,
        ),
        Report(
            "expiring_privileges",
            _("Privileges expiring in the next 24 hours"),
            _("Privileged grants (groups, staff, superuser) whose expiry falls within the next 24 hours."),
            lambda *, now, days: expiring_privileges(now=now),
            ("user_id", "username", "kind", "group", "idp_entity_id", "granted_at", "last_asserted_at", "expires_at"),
            grant_row,
            ACCESS,
            indexed=True,
        ),
        Report(
            "review_debt",
            _("Review debt"),
            _("Events that need review (privileged changes, links, approvals, reactivations) and have none."),
            _plain(unreviewed),
            ("event_id", "created_at", "kind", "user_id", "username", "idp_entity_id", "reason_code", "waiting_days"),
            event_row,
            ACCESS,
            indexed=True,
        ),
    )
}


def get(code: str) -> Report | None:
    return REPORTS.get(code)


#: Column headings of the report pages (exports keep the field names).
FIELD_LABELS = {
    "match": _("match"),
    "user_id": _("user ID"),
    "username": _("username"),
    "email": _("email"),
    "state": _("state"),
    "created_by": _("created by"),
    "idps": _("IdPs"),
    "last_asserted_at": _("last asserted"),
    "last_scim_at": _("last SCIM touch"),
    "idp_entity_id": _("IdP entity ID"),
    "subject": _("subject"),
    "bound_at": _("bound at"),
    "sso": _("SSO account"),
    "is_staff": _("staff"),
    "is_superuser": _("superuser"),
    "sessions": _("sessions"),
    "since": _("since"),
    "waiting_days": _("days waiting"),
    "kind": _("kind"),
    "group": _("group"),
    "granted_at": _("granted at"),
    "expires_at": _("expires at"),
    "event_id": _("event"),
    "created_at": _("time"),
    "reason_code": _("reason code"),
}
