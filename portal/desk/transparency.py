"""Public figures: what the organization may say about its work without
singling anyone out (``portal desk publish-figures``).

From the desk's own records: reports received, per period; reports by current
status; median days to the first reply; referrals to legal aid. Any count below
``min_count`` is withheld (``None``: "fewer than N"), and so is a shown part
whose withheld siblings could be worked out from the total (disclosure.py);
only closed months count (not the one under way), and months are merged
into periods until each period holds at least ``min_count`` reports, so a
single report's month never shows. Witness cases are not counted. The figures
travel to the portal inside the next outbox, under the desk's signature, and
the portal withholds again anything under its own threshold.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Iterable
from typing import Any

from portal.common.disclosure import shown, withheld
from portal.desk import cases as desk_cases
from portal.desk.keystore import DeskKeys
from portal.desk.stats import CaseFacts
from portal.desk.store import DeskStore, Setting
from portal.protocol.replies import STATUSES

DEFAULT_MIN = 5
SETTING = "published_figures"


def _periods(months: list[tuple[str, int]], min_count: int) -> list[dict[str, Any]]:
    """Consecutive months merged until each period holds ``min_count`` reports; a
    short tail joins the period before it (or nothing is shown at all)."""
    periods: list[dict[str, Any]] = []
    start, count = "", 0
    for month, n in months:
        start = start or month
        count += n
        if count >= min_count:
            periods.append({"from": start, "to": month, "count": count})
            start, count = "", 0
    if start and periods:
        last = periods[-1]
        last["to"], last["count"] = months[-1][0], last["count"] + count
    return periods


def public_figures(
    facts: Iterable[CaseFacts], min_count: int = DEFAULT_MIN, today: dt.date | None = None
) -> dict[str, Any]:
    """The figures as published: no count under ``min_count`` appears. Only reports
    of the months before ``today``'s month are counted (``today`` is for tests)."""
    if min_count < 2:
        raise ValueError("a threshold under 2 would show single reports")
    day = today or dt.datetime.now(dt.UTC).date()
    this_month = day.strftime("%Y-%m")
    # Closed months only: the month under way would show its reports one by one,
    # publication after publication.
    reports = [f for f in facts if f.kind == "report" and f.opened.strftime("%Y-%m") < this_month]
    by_month: dict[str, int] = {}
    for f in reports:
        key = f.opened.strftime("%Y-%m")
        by_month[key] = by_month.get(key, 0) + 1
    months: list[tuple[str, int]] = []
    if by_month:
        year, month = map(int, min(by_month).split("-"))
        last = max(by_month)
        while f"{year:04d}-{month:02d}" <= last:
            key = f"{year:04d}-{month:02d}"
            months.append((key, by_month.get(key, 0)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    replied = [(f.first_reply - f.opened).total_seconds() / 86400 for f in reports if f.first_reply]
    total = shown(len(reports), min_count)
    waiting = len(reports) - len(replied)
    answered = withheld(total, {"replied": len(replied), "waiting": waiting}, min_count)
    statuses = {s: sum(1 for f in reports if f.status == s) for s in STATUSES}
    return {
        "v": 1,
        "made_on": dt.datetime.now(dt.UTC).date().isoformat(),
        "min_count": min_count,
        "total_reports": total,
        "reports_by_period": _periods(months, min_count) if total is not None else [],
        "by_status": withheld(total, statuses, min_count),
        "replied": answered["replied"],
        "median_days_to_first_reply": (
            round(max(0.0, statistics.median(replied)), 1) if len(replied) >= min_count else None
        ),
        "referrals": shown(sum(1 for f in reports if f.referred), min_count),
    }


def publish(
    store: DeskStore, keys: DeskKeys, min_count: int = DEFAULT_MIN, today: dt.date | None = None
) -> dict[str, Any]:
    """Compute the figures now (up to the last closed month before ``today``) and
    keep them for every outbox from now on."""
    figures = public_figures(desk_cases.case_facts(store, keys), min_count, today)
    with store.changing(), store.db.transaction() as s:
        s.merge(Setting(key=SETTING, value=json.dumps(figures, sort_keys=True)))
    store.custody.append("publish", keys.person, figures=figures)
    return figures


def published(store: DeskStore) -> dict[str, Any] | None:
    with store.db.reading() as s:
        row = s.get(Setting, SETTING)
    return None if row is None else dict(json.loads(row.value))
