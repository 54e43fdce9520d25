"""The dashboard: its figures (each a number and the list behind it) and its charts.

* **Per-day series** — logins (``created``, ``linked``, ``updated``,
  ``login``), denials (``denied``) and rejections (``rejected``) per day over
  30 or 90 days, by kind or reason code and by IdP — come from the
  :class:`~saml_jit.models.DailyEventCount` roll-up. A past day is counted
  once, the first time a dashboard needs it (:func:`roll_up_day`: one
  ``GROUP BY`` over that day's range of the indexed ``created_at``), and
  marked in :class:`~saml_jit.models.RolledUpDay`; later views read the
  roll-up (at most a few thousand rows for 90 days) and count only today
  live. Days are those of ``settings.TIME_ZONE`` (not the viewer's), so a
  stored day means the same for everybody; a day is rolled up once it ended
  :data:`SETTLE` ago (a login committing just after midnight is still
  counted), until then it is counted live like today.
* **Final once rolled up.** Events are append-only and stamped when they are
  written, so a past day does not change. An event stored later with an
  earlier timestamp (an import, a restored backup) is in the event list but
  not in the charts until that day's roll-up is rebuilt (:func:`forget`);
  retention pruning leaves the roll-up alone, so the charts keep the history
  the event table no longer has.
* **Accounts** by lifecycle state and by how they were created
  (``created_by``; accounts without a lifecycle row yet are counted as
  ``local``).
* **Figures**: the window's logins, denials and rejections; review debt (how
  many, how old the oldest), pending approvals (how many, the oldest's wait)
  and privileges expiring within 24 hours — index look-ups, counted on every
  view — and the reports that read every account (orphans, duplicates, ways
  around SSO) with accounts by state and by origin: those are counted at
  most every :data:`ACCOUNT_COUNTS_MAX_AGE` seconds and kept in the Django
  cache (:func:`account_counts`), so a page view never scans the account
  tables. A view that finds them older serves them as they are and counts
  them again once its page has been sent (:func:`recount_after_response`:
  with 100,000 accounts that takes seconds, which no viewer should wait
  for); only a view that finds none at all (a new site, a flushed cache)
  counts them first. The page says when they were counted, each report's
  own page counts live, and opening the reports page (or ``?recount=1``)
  counts them again at once.

Nothing here knows the admin's URLs: a :class:`Link` names an admin view and
its filters, and the caller's ``url`` turns it into an address.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import AccountLifecycle, DailyEventCount, EventKind, LifecycleState, ProvisioningEvent, RolledUpDay
from . import charts, reports

logger = logging.getLogger(__name__)

#: Event kinds per chart family.
FAMILIES: dict[str, tuple[str, ...]] = {
    "logins": (EventKind.CREATED, EventKind.LINKED, EventKind.UPDATED, EventKind.LOGIN),
    "denials": (EventKind.DENIED,),
    "rejections": (EventKind.REJECTED,),
}
FAMILY_TITLES = {
    "logins": gettext_lazy("Logins"),
    "denials": gettext_lazy("Denials"),
    "rejections": gettext_lazy("Rejections"),
}
CHARTED_KINDS = tuple(kind for kinds in FAMILIES.values() for kind in kinds)
#: The windows offered (days, today included).
WINDOWS = (30, 90)
#: Categories drawn per chart; the rest are one grey "other".
TOP = 8
#: A past day is rolled up once it ended this long ago.
SETTLE = timedelta(minutes=10)
#: Seconds the account figures (reports over every account) are kept before they are counted again.
ACCOUNT_COUNTS_MAX_AGE = 600
#: Seconds the cache keeps them at all: older figures are served (and recounted) rather than counted first.
ACCOUNT_COUNTS_KEPT = 7 * 86400
CACHE_KEY = "saml_jit:dashboard:account-counts:v1"
#: Held (``cache.add``) by the one process recounting, so app servers do not all count at once.
RECOUNT_LOCK = "saml_jit:dashboard:account-counts:recounting"

EVENTS = "saml_jit_provisioningevent_changelist"
LIFECYCLES = "saml_jit_accountlifecycle_changelist"
REPORT = "saml_jit_governancereport_report"


@dataclass(frozen=True)
class Link:
    """An admin page: its URL name (without the site's namespace), arguments and filters."""

    name: str
    query: Mapping[str, str] = field(default_factory=dict)
    args: tuple[Any, ...] = ()


Url = Callable[[Link], str]


@dataclass(frozen=True)
class Figure:
    code: str
    label: str
    value: int
    href: str
    detail: str = ""
    group: str = ""


@dataclass(frozen=True)
class ChartSpec:
    """A chart to draw: stacked bars per day (``stacks``) or horizontal bars (``bars``)."""

    chart: charts.Chart
    days: Sequence[date] = ()
    stacks: Sequence[charts.Stack] = ()
    bars: Sequence[charts.Bar] = ()

    def svg(self) -> str:
        if self.bars or not self.days:
            return charts.horizontal_bars(self.chart, self.bars)
        return charts.stacked_bars(self.chart, self.days, self.stacks)


@dataclass(frozen=True)
class Dashboard:
    window: int
    days: list[date]
    start: datetime
    figures: list[Figure]
    charts: list[ChartSpec]
    #: When the account figures (reports that read every account, accounts by origin) were counted.
    counted_at: datetime
    #: The account figures are older than :data:`ACCOUNT_COUNTS_MAX_AGE`: recount them after the response.
    recount_due: bool = False


# ----------------------------------------------------------------------------
# Days and the roll-up


def tz() -> Any:
    return timezone.get_default_timezone()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz())


def window_days(window: int, now: datetime) -> list[date]:
    """The ``window`` days up to today (in ``settings.TIME_ZONE``), oldest first."""
    today = timezone.localtime(now, tz()).date()
    return [today - timedelta(days=offset) for offset in range(window - 1, -1, -1)]


def settled(day: date, now: datetime) -> bool:
    """Whether ``day`` ended :data:`SETTLE` ago (then its roll-up is final)."""
    return day_start(day + timedelta(days=1)) + SETTLE <= now


def roll_up_day(day: date) -> bool:
    """Count ``day``'s events per kind, reason, IdP and source, and store them; False if another process did.

    The counts and the :class:`RolledUpDay` mark are one transaction: of two
    processes rolling up the same day, the second one's unique mark fails and
    its counts are rolled back with it.
    """
    start, end = day_start(day), day_start(day + timedelta(days=1))
    rows = (
        ProvisioningEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("kind", "reason_code", "idp_entity_id", "source")
        .annotate(n=Count("*"))
    )
    counts = [
        DailyEventCount(day=day, kind=kind, reason_code=reason, idp_entity_id=idp, source=source, count=n)
        for kind, reason, idp, source, n in rows
    ]
    try:
        with transaction.atomic():
            DailyEventCount.objects.bulk_create(counts, batch_size=500)
            RolledUpDay.objects.create(day=day)
    except IntegrityError:
        return False
    return True


def roll_up(days: Iterable[date]) -> int:
    """Roll up those of ``days`` that are not yet (one query when none is missing); how many were."""
    days = list(days)
    if not days:
        return 0
    done = set(RolledUpDay.objects.filter(day__gte=min(days), day__lte=max(days)).values_list("day", flat=True))
    return sum(roll_up_day(day) for day in days if day not in done)


def forget(days: Iterable[date]) -> None:
    """Drop the roll-up of ``days``: the next dashboard view counts them again from the events."""
    days = list(days)
    with transaction.atomic():
        RolledUpDay.objects.filter(day__in=days).delete()
        DailyEventCount.objects.filter(day__in=days).delete()


Row = tuple[date, str, str, str, int]  # day, kind, reason code, IdP, count


def event_counts(days: Sequence[date], now: datetime) -> list[Row]:
    """Charted events per (day, kind, reason, IdP) over ``days``: rolled-up days stored, the others live.

    Queries: one for the days already rolled up, one for the stored counts,
    one per day counted live (usually only today).
    """
    past = [day for day in days if settled(day, now)]
    recent = [day for day in days if not settled(day, now)]
    roll_up(past)
    rows: list[Row] = []
    if past:
        stored = (
            DailyEventCount.objects.filter(day__gte=past[0], day__lte=past[-1], kind__in=CHARTED_KINDS)
            .order_by()
            .values_list("day", "kind", "reason_code", "idp_entity_id")
            .annotate(n=Sum("count"))
        )
        rows.extend(stored)
    for day in recent:  # today, and yesterday for SETTLE after midnight: a range each, no per-row date cast
        end = day_start(day + timedelta(days=1))
        live = (
            ProvisioningEvent.objects.filter(created_at__gte=day_start(day), created_at__lt=end, kind__in=CHARTED_KINDS)
            .order_by()
            .values_list("kind", "reason_code", "idp_entity_id")
            .annotate(n=Count("*"))
        )
        rows.extend((day, kind, reason, idp, n) for kind, reason, idp, n in live)
    return rows


# ----------------------------------------------------------------------------
# Account figures: counted at most every ACCOUNT_COUNTS_MAX_AGE seconds


@dataclass(frozen=True)
class AccountCounts:
    """The figures that read every account: the non-indexed reports' counts, accounts per state and per origin."""

    counted_at: datetime
    reports: dict[str, int]
    states: dict[str, int]
    origins: dict[str, int]


def count_accounts(now: datetime | None = None) -> AccountCounts:
    now = now or timezone.now()
    with reports.planned_once():
        counts = {
            report.code: report.count(now=now)
            for report in reports.REPORTS.values()
            if report.on_dashboard and not report.indexed
        }
        return AccountCounts(now, counts, states(), origins())


def account_counts(now: datetime | None = None, *, refresh: bool = False) -> AccountCounts:
    """The account figures from the cache (shared by every app server), counted again when missing or ``refresh``.

    A cache that cannot be reached is not an error: the figures are counted for this view.
    """
    if not refresh:
        try:
            stored = cache.get(CACHE_KEY)
        except Exception:
            logger.warning("saml_jit dashboard: the cache could not be read; counting the account figures")
            stored = None
        if isinstance(stored, tuple) and len(stored) == 4:
            return AccountCounts(*stored)
    counted = count_accounts(now)
    try:
        stored = (counted.counted_at, counted.reports, counted.states, counted.origins)
        cache.set(CACHE_KEY, stored, ACCOUNT_COUNTS_KEPT)
    except Exception:
        logger.warning("saml_jit dashboard: the cache could not be written")
    return counted


def stale(counted: AccountCounts, now: datetime | None = None) -> bool:
    """Whether ``counted`` is older than :data:`ACCOUNT_COUNTS_MAX_AGE` (then it is to be counted again)."""
    return (now or timezone.now()) - counted.counted_at >= timedelta(seconds=ACCOUNT_COUNTS_MAX_AGE)


def recount_after_response() -> None:
    """Count the account figures again and store them; called once a page showing stale ones has been sent.

    Of several processes finding the figures stale, the one that takes
    :data:`RECOUNT_LOCK` counts; the others do nothing. A failure is logged,
    never raised: the page has been answered already.
    """
    try:
        if not cache.add(RECOUNT_LOCK, True, ACCOUNT_COUNTS_MAX_AGE):
            return
    except Exception:
        logger.warning("saml_jit dashboard: the cache could not be reached; the account figures stay as they are")
        return
    try:
        account_counts(refresh=True)
    except Exception:
        logger.exception("saml_jit dashboard: recounting the account figures failed")
    finally:
        cache.delete(RECOUNT_LOCK)


# ----------------------------------------------------------------------------
# Series


def _events_link(kinds: Sequence[str], start: datetime, end: datetime | None = None, **extra: str) -> Link:
    query = {"kind__in": ",".join(kinds), "created_at__gte": str(start), **extra}
    if end is not None:
        query["created_at__lt"] = str(end)
    return Link(EVENTS, query)


def _label(value: str, dimension: str) -> str:
    if value:
        return value
    return _("(no reason code)") if dimension == "reason" else _("(no IdP)")


def _stacks(
    per_day: Mapping[str, Mapping[date, int]], days: Sequence[date], href: Callable[[str], str], dimension: str
) -> list[charts.Stack]:
    """The :data:`TOP` biggest categories (the rest folded into "other"), each with its list's link."""
    ranked = sorted(per_day, key=lambda value: (-sum(per_day[value].values()), value))
    keep = ranked if len(ranked) <= TOP else ranked[: TOP - 1]
    stacks = [
        charts.Stack(_label(value, dimension), [per_day[value].get(day, 0) for day in days], href(value))
        for value in keep
    ]
    rest = ranked[len(keep) :]
    if rest:
        values = [sum(per_day[value].get(day, 0) for value in rest) for day in days]
        stacks.append(charts.Stack(_("other (%(n)d)") % {"n": len(rest)}, values, other=True))
    return stacks


def _grouped(rows: Iterable[Row], kinds: Sequence[str], dimension: str) -> dict[str, dict[date, int]]:
    position = {"kind": 0, "reason": 1, "idp": 2}[dimension]
    grouped: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for day, kind, reason, idp, count in rows:
        if kind in kinds:
            grouped[(kind, reason, idp)[position]][day] += count
    return grouped


def family_charts(family: str, rows: list[Row], days: list[date], url: Url) -> list[ChartSpec]:
    """A family's two charts: by kind (logins) or reason code, and by IdP."""
    kinds, title, start = FAMILIES[family], FAMILY_TITLES[family], day_start(days[0])
    day_links = {
        day.isoformat(): url(_events_link(kinds, day_start(day), day_start(day + timedelta(days=1)))) for day in days
    }
    filters = {"kind": "kind__exact", "reason": "reason_code__exact", "idp": "idp_entity_id__exact"}
    specs = []
    for dimension in ("kind" if family == "logins" else "reason", "idp"):
        grouped = _grouped(rows, kinds, dimension)
        by = _("by IdP") if dimension == "idp" else _("by kind") if dimension == "kind" else _("by reason code")
        total = sum(sum(values.values()) for values in grouped.values())
        chart = charts.Chart(
            f"{family}-{dimension}",
            f"{title} {_('per day')}, {by}",
            _("%(total)d in %(days)d days, from %(start)s") % {"total": total, "days": len(days), "start": days[0]},
            day_links=day_links,
        )
        href = lambda value, d=dimension: url(_events_link(kinds, start, **{filters[d]: value}))  # noqa: E731
        specs.append(ChartSpec(chart, days, _stacks(grouped, days, href, dimension)))
    return specs


# ----------------------------------------------------------------------------
# Accounts and figures


def states() -> dict[str, int]:
    """Lifecycle rows per state (a whole-index read: counted with the reports, not per view)."""
    return dict(AccountLifecycle.objects.order_by().values_list("state").annotate(n=Count("*")))


def accounts_by_state(counted: AccountCounts, url: Url) -> ChartSpec:
    bars = [
        charts.Bar(str(label), counted.states.get(state, 0), url(Link(LIFECYCLES, {"state__exact": state})))
        for state, label in LifecycleState.choices
    ]
    description = _("Lifecycle rows per state; counted at %(at)s") % {"at": counted.counted_at}
    return ChartSpec(charts.Chart("accounts-state", _("Accounts by lifecycle state"), description), bars=bars)


def origins() -> dict[str, int]:
    """Accounts per ``created_by`` (no index: a scan of the lifecycle rows, so counted with the reports)."""
    counts: dict[str, int] = defaultdict(int)
    for created_by, n in AccountLifecycle.objects.order_by().values_list("created_by").annotate(n=Count("*")):
        counts[created_by or "local"] += n
    counts["local"] += max(0, get_user_model()._default_manager.count() - sum(counts.values()))
    return dict(counts)


def accounts_by_origin(counted: AccountCounts, url: Url) -> ChartSpec:
    bars = [
        charts.Bar(origin, n, url(Link(LIFECYCLES, {"created_by__exact": origin})))
        for origin, n in sorted(counted.origins.items(), key=lambda item: (-item[1], item[0]))
    ]
    description = _("How each account came to be: a JIT login, SCIM, or outside saml_jit (local); counted at %(at)s")
    chart = charts.Chart("accounts-origin", _("Accounts by creation source"), description % {"at": counted.counted_at})
    return ChartSpec(chart, bars=bars)


def debt_chart(days: list[date], url: Url) -> ChartSpec:
    series = reports.review_debt_over_time(days, tz())
    href = url(Link(REPORT, args=("review_debt",)))
    description = _("Events due for review (created, not reviewed) at the end of each day")
    chart = charts.Chart("review-debt", _("Review debt over time"), description)
    legend = _("due for review (now: %(n)d)") % {"n": series[-1] if series else 0}
    return ChartSpec(chart, days, [charts.Stack(_("due for review"), series, href, legend=legend)])


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    days = (now - moment).days
    return _("oldest: %(days)d days") % {"days": days} if days != 1 else _("oldest: 1 day")


def _detail(report: reports.Report, now: datetime) -> tuple[int, str, Link]:
    """An indexed report's live count, its detail (the oldest's age) and its link."""
    link = Link(REPORT, args=(report.code,))
    if report.code == "review_debt":
        debt = reports.review_debt()
        return debt.count, _age(debt.oldest, now), link
    value = report.count(now=now)
    if report.code == "pending_approvals":
        oldest = reports.pending_approvals().values_list("since", flat=True).first() if value else None
        return value, _age(oldest, now), Link(LIFECYCLES, {"state__exact": LifecycleState.PENDING})
    return value, "", link


def report_figures(now: datetime, counted: AccountCounts, url: Url) -> list[Figure]:
    """Every report on the dashboard, each linking to its page (pending approvals: to the lifecycle list).

    Indexed reports are counted now; the others come from ``counted``.
    """
    figures = []
    for report in reports.REPORTS.values():
        if not report.on_dashboard:
            continue
        if report.indexed:
            value, detail, link = _detail(report, now)
        else:
            value, link = counted.reports.get(report.code, 0), Link(REPORT, args=(report.code,))
            detail = _("%(days)d days") % {"days": report.days} if report.days else ""
        figures.append(Figure(report.code, str(report.title), value, url(link), detail, str(report.group)))
    return figures


def period_figures(rows: list[Row], days: list[date], url: Url) -> list[Figure]:
    start = day_start(days[0])
    window = _("last %(days)d days") % {"days": len(days)}
    return [
        Figure(
            family,
            str(FAMILY_TITLES[family]),
            sum(row[4] for row in rows if row[1] in kinds),
            url(_events_link(kinds, start)),
            window,
            _("Events"),
        )
        for family, kinds in FAMILIES.items()
    ]


def build(
    window: int = WINDOWS[0], *, now: datetime | None = None, url: Url | None = None, recount: bool = False
) -> Dashboard:
    """Everything the dashboard page shows, for the last ``window`` days (``recount``: account figures too)."""
    now = now or timezone.now()
    url = url or (lambda link: "")
    days = window_days(window if window in WINDOWS else WINDOWS[0], now)
    rows = event_counts(days, now)
    counted = account_counts(now, refresh=recount)
    specs = [spec for family in FAMILIES for spec in family_charts(family, rows, days, url)]
    specs += [debt_chart(days, url), accounts_by_state(counted, url), accounts_by_origin(counted, url)]
    figures = period_figures(rows, days, url) + report_figures(now, counted, url)
    due = stale(counted, now)
    return Dashboard(len(days), days, day_start(days[0]), figures, specs, counted.counted_at, due)
