"""Public figures: what the organization may say about its work without
singling anyone out (``portal desk publish-figures``).

From the desk's own records: reports received, per period; reports by current
status; median days to the first reply; referrals to legal aid. Any count below
``min_count`` is withheld (``None``: "fewer than N"), and months are merged
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

from portal.desk import cases as desk_cases
from portal.desk.keystore import DeskKeys
from portal.desk.stats import CaseFacts
from portal.desk.store import DeskStore, Setting
from portal.protocol.replies import STATUSES

DEFAULT_MIN = 5
SETTING = "published_figures"


def _count(n: int, min_count: int) -> int | None:
    return n if n >= min_count else None


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
    """The figures as published: no count under ``min_count`` appears."""
    if min_count < 2:
        raise ValueError("a threshold under 2 would show single reports")
    reports = [f for f in facts if f.kind == "report"]
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
    return {
        "v": 1,
        "made_on": (today or dt.datetime.now(dt.UTC).date()).isoformat(),
        "min_count": min_count,
        "total_reports": _count(len(reports), min_count),
        "reports_by_period": _periods(months, min_count),
        "by_status": {
            s: _count(sum(1 for f in reports if f.status == s), min_count) for s in STATUSES
        },
        "replied": _count(len(replied), min_count),
        "median_days_to_first_reply": (
            round(max(0.0, statistics.median(replied)), 1) if len(replied) >= min_count else None
        ),
        "referrals": _count(sum(1 for f in reports if f.referred), min_count),
    }


def publish(store: DeskStore, keys: DeskKeys, min_count: int = DEFAULT_MIN) -> dict[str, Any]:
    """Compute the figures now and keep them for every outbox from now on."""
    figures = public_figures(desk_cases.case_facts(store, keys), min_count)
    with store.changing(), store.db.transaction() as s:
        s.merge(Setting(key=SETTING, value=json.dumps(figures, sort_keys=True)))
    store.custody.append("publish", keys.person, figures=figures)
    return figures


def published(store: DeskStore) -> dict[str, Any] | None:
    with store.db.reading() as s:
        row = s.get(Setting, SETTING)
    return None if row is None else dict(json.loads(row.value))
