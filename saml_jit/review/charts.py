"""Server-side SVG charts for the dashboard: stacked bars per day, horizontal bars per category.

Pure: plain data in, an SVG string out — no JavaScript, no stylesheet or
font from elsewhere, nothing to build. Each chart is an image with a
``<title>`` and a ``<desc>`` (``role="img"``, ``aria-labelledby``), text
labels on its axes and legend, and a ``<title>`` on every bar that a screen
reader or a mouse pointer reads. Every label is escaped: reason codes and
IdP entity IDs come from outside. Links (``href``) are kept only when they
are relative to this site (``/…`` or ``?…``).

Colours are the Okabe-Ito palette (distinguishable with the common colour
vision deficiencies); text and axes use ``currentColor``, so the admin's
light and dark themes both read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#8C6D31")
OTHER_COLOUR = "#999999"
WIDTH = 720
PLOT_HEIGHT = 160
LEFT, TOP, BOTTOM = 48, 12, 28
LINE = 18
LABEL_CHARS = 60


@dataclass(frozen=True)
class Stack:
    """One category of a stacked chart: its label, a value per day, and where its list is."""

    label: str
    values: Sequence[int]
    href: str = ""
    #: Drawn grey, whatever its position (the "other" category).
    other: bool = False
    #: The legend's text; default: the label and the total over the days.
    legend: str = ""


@dataclass(frozen=True)
class Bar:
    """One category of a horizontal bar chart."""

    label: str
    value: int
    href: str = ""


@dataclass(frozen=True)
class Chart:
    """What every chart has: an id unique in the page, a title, a description for screen readers."""

    ident: str
    title: str
    description: str = ""
    #: Stacked bars: the link of each day's bar, by ISO date.
    day_links: Mapping[str, str] = field(default_factory=dict)


def esc(text: object) -> str:
    """Text and attribute values, escaped for XML (quotes included)."""
    return escape(str(text), quote=True)


def short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_href(href: str) -> str:
    """``href`` when it stays on this site (``/path`` or ``?query``, not ``//host``); otherwise empty."""
    return href if (href.startswith("/") and not href.startswith("//")) or href.startswith("?") else ""


def _ident(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "chart"


def _link(href: str, body: str) -> str:
    href = safe_href(href)
    return f'<a href="{esc(href)}">{body}</a>' if href else body


def _open(chart: Chart, height: int) -> str:
    ident = _ident(chart.ident)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="saml-jit-chart" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="sans-serif" font-size="11">'
        f'<title id="{ident}-title">{esc(chart.title)}</title>'
        f'<desc id="{ident}-desc">{esc(chart.description)}</desc>'
    )


def _nice_max(value: int) -> int:
    """The axis top: ``value`` rounded up to 2, 4, 6, 8 or 10 times a power of ten (even, so its half is whole)."""
    if value <= 2:
        return 2
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (2, 4, 6, 8, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 20 * magnitude


def _y_axis(top_value: int) -> list[str]:
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + PLOT_HEIGHT - fraction * PLOT_HEIGHT
        value = int(top_value * fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" '
            f'stroke-opacity="{0.5 if fraction == 0 else 0.15}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="currentColor">{value:,}</text>'
        )
    return parts


def _x_labels(days: Sequence[date], slot: float) -> list[str]:
    every = max(1, len(days) // 6)
    parts = []
    for index, day in enumerate(days):
        if index % every == 0 or index == len(days) - 1:
            x = LEFT + slot * (index + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{TOP + PLOT_HEIGHT + 16}" text-anchor="middle" '
                f'fill="currentColor">{esc(day.strftime("%m-%d"))}</text>'
            )
    return parts


def _colour(index: int, stack: Stack) -> str:
    return OTHER_COLOUR if stack.other else PALETTE[index % len(PALETTE)]


def _day_column(
    chart: Chart, day: date, x: float, width: float, stacks: Sequence[Stack], index: int, scale: float
) -> str:
    """One day's bar: its segments bottom-up, each with a ``<title>``; the day's link around them."""
    y: float = TOP + PLOT_HEIGHT
    parts: list[str] = []
    for position, stack in enumerate(stacks):
        value = stack.values[index]
        if value <= 0:
            continue
        height = value * scale
        y -= height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{_colour(position, stack)}"><title>{esc(day.isoformat())} · {esc(stack.label)}: '
            f"{value:,}</title></rect>"
        )
    return _link(chart.day_links.get(day.isoformat(), ""), "".join(parts)) if parts else ""


def _legend(stacks: Sequence[Stack], top: int) -> list[str]:
    parts = []
    for position, stack in enumerate(stacks):
        y = top + position * LINE
        text = stack.legend or f"{short(stack.label)} ({sum(stack.values):,})"
        body = (
            f'<rect x="{LEFT}" y="{y}" width="12" height="12" fill="{_colour(position, stack)}"/>'
            f'<text x="{LEFT + 18}" y="{y + 10}" fill="currentColor"><title>{esc(stack.label)}</title>'
            f"{esc(text)}</text>"
        )
        parts.append(_link(stack.href, body))
    return parts


def stacked_bars(chart: Chart, days: Sequence[date], stacks: Sequence[Stack]) -> str:
    """Bars per day, stacked by category, a legend (with totals and links) below.

    ``chart.day_links`` maps an ISO day to the link of that day's bar.
    """
    slot = (WIDTH - LEFT - 8) / max(1, len(days))
    totals = [sum(stack.values[i] for stack in stacks) for i in range(len(days))]
    top_value = _nice_max(max(totals, default=0))
    scale = PLOT_HEIGHT / top_value
    legend_top = TOP + PLOT_HEIGHT + BOTTOM
    height = legend_top + max(1, len(stacks)) * LINE
    parts = [_open(chart, height), *_y_axis(top_value), *_x_labels(days, slot)]
    width = max(1.0, slot * 0.8)
    for index, day in enumerate(days):
        parts.append(_day_column(chart, day, LEFT + slot * index + slot * 0.1, width, stacks, index, scale))
    parts.extend(_legend(stacks, legend_top))
    if not stacks or not any(totals):
        parts.append(f'<text x="{LEFT + 8}" y="{TOP + PLOT_HEIGHT - 8}" fill="currentColor">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(chart: Chart, bars: Sequence[Bar]) -> str:
    """One bar per category, its label on the left and its value on the right; each bar links to its list."""
    label_width, row = 200, 22
    height = TOP * 2 + max(1, len(bars)) * row
    top_value = max((bar.value for bar in bars), default=0) or 1
    room = WIDTH - label_width - 80
    parts = [_open(chart, height)]
    for position, bar in enumerate(bars):
        y = TOP + position * row
        length = max(1.0, room * bar.value / top_value) if bar.value else 0
        body = (
            f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end" fill="currentColor">'
            f"<title>{esc(bar.label)}</title>{esc(short(bar.label, 32))}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
            f'fill="{PALETTE[position % len(PALETTE)]}"><title>{esc(bar.label)}: {bar.value:,}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 14}" fill="currentColor">{bar.value:,}</text>'
        )
        parts.append(_link(bar.href, body))
    parts.append("</svg>")
    return "".join(parts)
