"""Public figures on the portal (/transparency): what the desk published, checked
field by field, and withheld again below the portal's own threshold
(``PORTAL_TRANSPARENCY_MIN``), so no figure can single out a reporter even if
the desk's threshold was set lower.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portal.common.disclosure import withheld
from portal.common.errors import NamedError
from portal.protocol.replies import STATUSES
from portal.server.models import PublishedFigures

MONTH = re.compile(r"\A20[0-9]{2}-(0[1-9]|1[0-2])\Z")
MAX_PERIODS = 600


class FiguresRefused(NamedError, ValueError):
    """Published figures that are not in the expected shape."""

    REASON = "figures"


@dataclass(frozen=True)
class Period:
    start: str  # YYYY-MM
    end: str
    count: int


@dataclass(frozen=True)
class Figures:
    """Figures as shown; None means "fewer than ``min_count``"."""

    made_on: dt.date
    min_count: int
    total_reports: int | None
    periods: tuple[Period, ...]
    by_status: tuple[tuple[str, int | None], ...]
    replied: int | None
    median_days_to_first_reply: float | None
    referrals: int | None


def _count(value: Any, min_count: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= 10**9:
        raise FiguresRefused("a count is not a whole number")
    return value if value >= min_count else None


def _merged(raw: list[Any], least: int) -> list[Period]:
    """The desk's periods, merged again where one holds fewer than ``least``
    reports (carried into the next; a short tail joins the one before)."""
    periods: list[Period] = []
    start, count = "", 0
    for p in raw:
        first, last, n = str(p["from"]), str(p["to"]), p["count"]
        if not (MONTH.match(first) and MONTH.match(last) and first <= last):
            raise FiguresRefused("a period is malformed")
        if type(n) is not int or not 0 <= n <= 10**9:
            raise FiguresRefused("a count is not a whole number")
        if periods and first <= periods[-1].end:
            raise FiguresRefused("its periods are out of order")
        start, count = start or first, count + n
        if count >= least:
            periods.append(Period(start, last, count))
            start, count = "", 0
    if start and periods:
        tail = periods[-1]
        periods[-1] = Period(tail.start, str(raw[-1]["to"]), tail.count + count)
    return periods


def checked(doc: Any, portal_min: int) -> Figures:
    """The figures as this portal will show them, or FiguresRefused."""
    if not isinstance(doc, dict) or type(doc.get("v")) is not int or doc["v"] != 1:
        raise FiguresRefused("not a figures document")
    try:
        made_on = dt.date.fromisoformat(str(doc["made_on"]))
        desk_min = doc["min_count"]
        if type(desk_min) is not int:
            raise FiguresRefused("its threshold is not a number")
        least = max(desk_min, portal_min)
        raw_periods = doc["reports_by_period"]
        if not isinstance(raw_periods, list) or len(raw_periods) > MAX_PERIODS:
            raise FiguresRefused("its periods are malformed")
        periods = _merged(raw_periods, least)
        statuses = doc["by_status"]
        if not isinstance(statuses, dict) or set(statuses) - set(STATUSES):
            raise FiguresRefused("its statuses are malformed")
        median = doc["median_days_to_first_reply"]
        replied = _count(doc["replied"], least)
        if median is not None and (not isinstance(median, int | float) or not 0 <= median < 10**6):
            raise FiguresRefused("its median is malformed")
        total = _count(doc["total_reports"], least)
        kept = withheld(total, {s: _count(statuses.get(s), least) for s in STATUSES}, least)
        if total is not None and replied is not None and 0 < total - replied < least:
            replied = None  # it would show how many are still waiting
        if made_on > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2):
            raise FiguresRefused("it is dated in the future")
        return Figures(
            made_on=made_on,
            min_count=least,
            total_reports=total,
            periods=tuple(periods) if total is not None else (),
            by_status=tuple((s, kept[s]) for s in STATUSES),
            replied=replied,
            median_days_to_first_reply=float(median) if median is not None and replied else None,
            referrals=_count(doc["referrals"], least),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FiguresRefused):
            raise
        raise FiguresRefused(f"it is malformed ({type(exc).__name__})") from exc


def keep(s: Session, doc: dict[str, Any], portal_min: int) -> None:
    """Inside an outbox's transaction: the newest figures replace older ones."""
    figures = checked(doc, portal_min)
    row = s.get(PublishedFigures, 1)
    if row is not None and row.made_on > figures.made_on:
        return
    text = json.dumps(doc, sort_keys=True)
    if row is None:
        s.add(PublishedFigures(id=1, made_on=figures.made_on, document=text))
    else:
        row.made_on, row.document = figures.made_on, text


def shown(s: Session, portal_min: int) -> Figures | None:
    row = s.get(PublishedFigures, 1)
    return None if row is None else checked(json.loads(row.document), portal_min)
