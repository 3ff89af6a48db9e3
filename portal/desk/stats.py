"""Statistics about the desk's cases: the figures, a CSV of them, and bar charts.

Pure functions over plain facts: nothing here reads the store, the keys or the
clock. The caller gathers one :class:`CaseFacts` per case and passes them to
:func:`compute`; :func:`to_csv` and :func:`bar_chart` turn the result into
something to save or to show.

Definitions, so that the figures mean the same thing every time:

- **Months** are calendar months in UTC, from the month of the first case
  opened to the month of the last, with the months in between that had no
  case counted as zero.
- **Tags** count cases, not uses: a tag given twice on one case counts once.
- **Durations** run from ``opened`` to ``first_reply`` (time to first reply)
  and from ``opened`` to ``closed`` (time to closing), over the cases that
  have that date. A date earlier than ``opened`` (a clock set wrong, or a
  case made on the desk after its first reply was drafted) counts as a
  duration of zero: it is still a case that was answered or closed, and a
  negative time would pull the figures below anything that really happened.
- **Median**: the middle duration once sorted; with an even count, the mean
  of the two middle ones (rounded to the microsecond, as ``timedelta`` does).
- **90th percentile** (``p90``), by the nearest-rank method: the duration at
  rank ``ceil(0.9 * n)`` (1-based) of the ``n`` sorted durations, so always
  one that really happened. For 1 to 10 durations: ranks 1, 2, 3, 4, 5, 6,
  7, 8, 9, 9.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.protocol.replies import STATUSES

__all__ = [
    "KINDS",
    "STATUSES",
    "CaseFacts",
    "Duration",
    "Stats",
    "bar_chart",
    "compute",
    "hours",
    "to_csv",
]

KINDS = ("report", "witness")
ZERO = timedelta(0)


@dataclass(frozen=True)
class CaseFacts:
    """What the statistics need to know about one case.

    Every date must be timezone-aware (UTC is expected; any aware date is
    accepted and read in UTC). ``closed`` is when the status first became
    "closed"; ``referred`` is whether it was ever "legal_aid".
    """

    case: str
    opened: datetime
    kind: str
    status: str
    tags: tuple[str, ...] = ()
    first_reply: datetime | None = None
    closed: datetime | None = None
    referred: bool = False

    def __post_init__(self) -> None:
        for name in ("opened", "first_reply", "closed"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} of case {self.case!r} has no time zone")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if not isinstance(self.tags, tuple):
            raise TypeError("tags must be a tuple")


@dataclass(frozen=True)
class Duration:
    """How many cases had the date, and the median and 90th percentile of the times.

    ``median`` and ``p90`` are None when ``count`` is zero.
    """

    count: int
    median: timedelta | None
    p90: timedelta | None


@dataclass(frozen=True)
class Stats:
    """The figures the desk shows. Every sequence is of ``(key, count)`` pairs."""

    total: int
    by_month: tuple[tuple[str, int], ...]
    """``YYYY-MM``, every month from the first case's to the last's, oldest first."""
    by_kind: tuple[tuple[str, int], ...]
    """In :data:`KINDS` order, zeros included."""
    by_status: tuple[tuple[str, int], ...]
    """In :data:`STATUSES` order, zeros included."""
    by_tag: tuple[tuple[str, int], ...]
    """Most used first, ties in code-point order of the tag."""
    to_first_reply: Duration
    to_close: Duration
    referrals: int


def hours(d: timedelta) -> float:
    """A duration in hours, for display (``timedelta(minutes=90)`` → ``1.5``)."""
    return d.total_seconds() / 3600


def compute(facts: Iterable[CaseFacts]) -> Stats:
    """The statistics of these cases (see the module's docstring for the definitions)."""
    cases = list(facts)
    kinds = Counter(c.kind for c in cases)
    statuses = Counter(c.status for c in cases)
    tags = Counter(tag for c in cases for tag in set(c.tags))
    return Stats(
        total=len(cases),
        by_month=_by_month(c.opened for c in cases),
        by_kind=tuple((kind, kinds[kind]) for kind in KINDS),
        by_status=tuple((status, statuses[status]) for status in STATUSES),
        by_tag=tuple(sorted(tags.items(), key=lambda item: (-item[1], item[0]))),
        to_first_reply=_duration(
            max(c.first_reply - c.opened, ZERO) for c in cases if c.first_reply is not None
        ),
        to_close=_duration(max(c.closed - c.opened, ZERO) for c in cases if c.closed is not None),
        referrals=sum(1 for c in cases if c.referred),
    )


def _by_month(dates: Iterable[datetime]) -> tuple[tuple[str, int], ...]:
    counts = Counter((d.astimezone(UTC).year, d.astimezone(UTC).month) for d in dates)
    if not counts:
        return ()
    (year, month), last = min(counts), max(counts)
    months = []
    while (year, month) <= last:
        months.append((f"{year:04d}-{month:02d}", counts[(year, month)]))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


def _duration(values: Iterable[timedelta]) -> Duration:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Duration(count=0, median=None, p90=None)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    rank = (9 * n + 9) // 10  # ceil(0.9 * n) in exact integer arithmetic
    return Duration(count=n, median=median, p90=ordered[rank - 1])


# --- CSV ---------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (OWASP's advice)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _hours_cell(d: timedelta | None) -> str:
    return "" if d is None else str(round(hours(d), 2))


def to_csv(stats: Stats) -> str:
    """The figures as CSV (RFC 4180, "\\r\\n" line ends), one ``section,key,value`` row each.

    The first row is the header ``section,key,value``. Sections, in order:
    ``cases`` (``total``), ``month``, ``kind``, ``status``, ``tag``,
    ``first_reply`` and ``close`` (``count``, ``median_hours``, ``p90_hours``:
    hours rounded to 2 decimals, empty when there is no duration) and
    ``referrals`` (``total``).

    Tags are typed by staff, so every cell that starts with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return is prefixed with a single quote
    so that a spreadsheet opening the file shows it rather than evaluating
    it. The rule is applied to every cell; the numbers written here are never
    negative, so it never changes one.
    """
    rows: list[tuple[str, str, str]] = [("section", "key", "value")]
    rows.append(("cases", "total", str(stats.total)))
    for section, pairs in (
        ("month", stats.by_month),
        ("kind", stats.by_kind),
        ("status", stats.by_status),
        ("tag", stats.by_tag),
    ):
        rows.extend((section, key, str(count)) for key, count in pairs)
    for section, duration in (("first_reply", stats.to_first_reply), ("close", stats.to_close)):
        rows.append((section, "count", str(duration.count)))
        rows.append((section, "median_hours", _hours_cell(duration.median)))
        rows.append((section, "p90_hours", _hours_cell(duration.p90)))
    rows.append(("referrals", "total", str(stats.referrals)))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(tuple(safe_cell(cell) for cell in row) for row in rows)
    return out.getvalue()


# --- SVG ---------------------------------------------------------------------

WIDTH = 640
PAD = 8
TITLE_HEIGHT = 32
ROW_HEIGHT = 24
BAR_HEIGHT = 16
LABEL_WIDTH = 180
VALUE_WIDTH = 56
BAR_SPACE = WIDTH - 2 * PAD - LABEL_WIDTH - VALUE_WIDTH
LABEL_CHARS = 26
BAR_COLOUR = "#1d4f91"  # 8.6:1 on white
TEXT_COLOUR = "#111"  # 18.9:1 on white
ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
# Characters XML 1.0 does not allow, even escaped (controls, lone surrogates, U+FFFE/F).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(text: str) -> str:
    """Staff text made safe to place between tags or in a quoted attribute."""
    return html.escape(NOT_XML.sub("\ufffd", text), quote=True)


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _chart_id(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(title.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"chart-{slug}-{digest}" if slug else f"chart-{digest}"


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, int]],
    *,
    label: str,
    id_prefix: str | None = None,
    empty: str = "Nothing to show yet.",
) -> str:
    """A horizontal bar chart as a self-contained, accessible inline ``<svg>``.

    ``bars`` are ``(key, count)`` pairs, drawn in the order given, each bar's
    length in proportion to the largest count (all-zero counts draw no bars,
    and no pairs draw the ``empty`` message). ``label`` says what is counted
    (e.g. "cases"); it starts the chart's description, which lists every
    pair for screen readers. Each bar has a ``<title>`` "key: count" shown as
    a tooltip; keys longer than 26 characters are shortened on the axis only.

    The chart is ``role="img"`` with ``aria-labelledby`` naming its own
    ``<title>`` and ``<desc>``, whose ids start with ``id_prefix`` (letters,
    digits, ``-`` and ``_``, starting with a letter), or else with a slug and
    hash of the title; pass ``id_prefix`` to draw two charts of the same title
    on one page. No script, no style sheet, no external resource, and the
    colours pass contrast on white. The ``<svg>`` says ``direction="ltr"``
    so that its layout and numbers stay put on a right-to-left page; text in
    a right-to-left script still reads right to left inside its own label.

    SECURITY: the desk inserts this string with Jinja's ``|safe``, so the
    escaping done here is the only defence. Every piece of text — the title,
    the label, the keys (tags are typed by staff and may be hostile) and the
    empty message — goes through ``html.escape(..., quote=True)`` after any
    character XML does not allow is replaced with U+FFFD, so the result is
    also well-formed XML.
    """
    if id_prefix is not None and not ID_PREFIX.match(id_prefix):
        raise ValueError(f"id_prefix {id_prefix!r} is not a plain id")
    if any(count < 0 for _, count in bars):
        raise ValueError("bar counts cannot be negative")
    prefix = id_prefix if id_prefix is not None else _chart_id(title)
    title_id, desc_id = f"{prefix}-title", f"{prefix}-desc"

    if bars:
        desc = f"{label}: " + "; ".join(f"{key}: {count}" for key, count in bars) + "."
    else:
        desc = f"{label}: {empty}"
    rows = max(len(bars), 1)
    height = TITLE_HEIGHT + rows * ROW_HEIGHT + PAD
    top = max((count for _, count in bars), default=0) or 1

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" direction="ltr" '
        f'font-family="sans-serif" font-size="13" fill="{TEXT_COLOUR}">',
        f'<title id="{title_id}">{_text(title)}</title>',
        f'<desc id="{desc_id}">{_text(desc)}</desc>',
        f'<text x="{PAD}" y="{TITLE_HEIGHT // 2 + 4}" font-size="15" '
        f'font-weight="bold">{_text(title)}</text>',
    ]
    if not bars:
        y = TITLE_HEIGHT + ROW_HEIGHT // 2
        parts.append(f'<text x="{PAD}" y="{y}" dominant-baseline="central">{_text(empty)}</text>')
    x0 = PAD + LABEL_WIDTH
    for index, (key, count) in enumerate(bars):
        row_top = TITLE_HEIGHT + index * ROW_HEIGHT
        middle = row_top + ROW_HEIGHT // 2
        width = BAR_SPACE * count / top
        parts.append(
            f'<text x="{x0 - 8}" y="{middle}" text-anchor="end" '
            f'dominant-baseline="central">{_text(_short(key))}</text>'
        )
        parts.append(
            f'<rect x="{x0}" y="{middle - BAR_HEIGHT // 2}" width="{width:.1f}" '
            f'height="{BAR_HEIGHT}" fill="{BAR_COLOUR}">'
            f"<title>{_text(f'{key}: {count}')}</title></rect>"
        )
        parts.append(
            f'<text x="{x0 + width + 6:.1f}" y="{middle}" '
            f'dominant-baseline="central">{count}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
