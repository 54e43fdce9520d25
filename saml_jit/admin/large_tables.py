"""A changelist over millions of rows: no COUNT(*), no SELECT DISTINCT on a page load."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from django.core.paginator import Paginator
from django.db.models import Max, Min, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Pages through a large, append-only table without COUNT(*) on every load.

    Unfiltered, the count is the span of primary keys (two index look-ups;
    rolled-back inserts make it a slight over-estimate). Filtered, matches are
    counted up to ``CAP`` only, so a broad filter costs a bounded scan; past
    that the last pages are not offered.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        queryset = cast("QuerySet[Any]", self.object_list)  # the admin changelist pages a QuerySet
        if not queryset.query.where:
            # Two ordered look-ups: one MIN()+MAX() query makes SQLite scan the table.
            ids = queryset.model._default_manager.order_by().values_list("pk", flat=True)
            low, high = ids.order_by("pk").first(), ids.order_by("-pk").first()
            return 0 if low is None or high is None else high - low + 1
        return queryset.order_by()[: self.CAP].count()


class DateDrillDownQuerySet(QuerySet):
    """Serves the admin's date hierarchy from index look-ups.

    Django's ``date_hierarchy`` asks for ``Min``/``Max`` of the date in one
    query (SQLite then scans the table) and for ``datetimes(field, kind)``,
    a ``SELECT DISTINCT`` truncation over every matching row. On a table of
    millions of events both take seconds. Here the first and last dates come
    from two ordered look-ups on the indexed column, and the periods offered
    are every year, month or day between them (a period may be empty).
    """

    def _first_last(self, field: str) -> tuple[Any, Any]:
        dates = self.order_by().values_list(field, flat=True)
        return dates.order_by(field).first(), dates.order_by(f"-{field}").first()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        spans = {key: agg for key, agg in kwargs.items() if isinstance(agg, (Min, Max))}
        sources = {getattr(agg.get_source_expressions()[0], "name", None) for agg in spans.values()}
        if args or not spans or len(spans) != len(kwargs) or len(sources) != 1 or None in sources:
            return super().aggregate(*args, **kwargs)
        first, last = self._first_last(cast(str, sources.pop()))  # None in sources was ruled out above
        return {key: first if isinstance(agg, Min) else last for key, agg in spans.items()}

    def datetimes(self, field_name: str, kind: str, order: str = "ASC", tzinfo: Any = None) -> list[Any]:  # type: ignore[override]
        first, last = self._first_last(field_name)
        if first is None:
            return []
        return list(_periods(timezone.localtime(first), timezone.localtime(last), kind))


def _periods(first: datetime, last: datetime, kind: str) -> Iterator[datetime]:
    if kind == "year":
        for year in range(first.year, last.year + 1):
            yield first.replace(year=year, month=1, day=1)
    elif kind == "month":
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            yield first.replace(year=year, month=month, day=1)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    else:
        day = first.replace(hour=0, minute=0, second=0, microsecond=0)
        while day.date() <= last.date():
            yield day
            day += timedelta(days=1)
