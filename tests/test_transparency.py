"""Public figures: small counts withheld and months grouped on the desk, again on
the portal under its own threshold, carried signed in the outbox, shown on
/transparency in every language."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.desk import cases, replies, transparency
from portal.desk.keystore import DeskKeys
from portal.desk.stats import CaseFacts
from portal.desk.store import DeskStore
from portal.server import figures
from tests.harness.loop import desk_outbox, submit_report, to_desk, to_portal

UTC = dt.UTC


def _fact(
    month: int, *, status: str = "received", referred: bool = False, kind: str = "report"
) -> CaseFacts:
    opened = dt.datetime(2026, month, 3, tzinfo=UTC)
    return CaseFacts(
        case=f"c{month}", opened=opened, kind=kind, status=status,
        first_reply=opened + dt.timedelta(days=2), referred=referred,
    )  # fmt: skip


def test_small_counts_are_withheld_and_months_grouped_on_the_desk() -> None:
    facts = [_fact(1)] * 3 + [_fact(2)] * 1 + [_fact(3)] * 6 + [_fact(5)] * 2
    facts += [_fact(3, status="closed")] * 2 + [_fact(3, kind="witness")] * 9
    out = transparency.public_figures(facts, min_count=5, today=dt.date(2026, 7, 1))
    assert out["total_reports"] == 14  # witness cases are not reports
    periods = out["reports_by_period"]
    # Jan 3 + Feb 1 + Mar 8 = 12 reach 5 in March; April 0 + May 2 join March's group.
    assert periods == [{"from": "2026-01", "to": "2026-05", "count": 14}]
    assert all(p["count"] >= 5 for p in periods) and sum(p["count"] for p in periods) == 14
    assert periods[0]["from"] == "2026-01" and periods[-1]["to"] == "2026-05"
    # 12 received and 2 closed: showing 12 beside the total of 14 would tell that
    # the withheld statuses hold 2, so 12 is withheld as well.
    assert out["by_status"]["received"] is None and out["by_status"]["closed"] is None
    assert out["referrals"] is None and out["median_days_to_first_reply"] == 2.0
    tiny = transparency.public_figures([_fact(1)] * 4, min_count=5, today=dt.date(2026, 7, 1))
    # The month under way is never counted: its reports would show one by one.
    current = transparency.public_figures([_fact(6)] * 9, min_count=5, today=dt.date(2026, 6, 20))
    assert current["total_reports"] is None and current["reports_by_period"] == []
    shown_whole = transparency.public_figures(
        [_fact(1)] * 6 + [_fact(1, status="closed")] * 5, min_count=5, today=dt.date(2026, 7, 1)
    )
    assert shown_whole["by_status"]["received"] == 6 and shown_whole["by_status"]["closed"] == 5
    assert tiny["total_reports"] is None and tiny["reports_by_period"] == []
    assert tiny["median_days_to_first_reply"] is None
    with pytest.raises(ValueError):
        transparency.public_figures(facts, min_count=1)


def test_the_portal_withholds_again_under_its_own_threshold() -> None:
    doc = transparency.public_figures(
        [_fact(1)] * 3 + [_fact(2)] * 3 + [_fact(3)] * 4, 2, today=dt.date(2026, 7, 1)
    )
    shown = figures.checked(doc, portal_min=5)
    assert shown.min_count == 5 and shown.total_reports == 10
    assert all(p.count >= 5 for p in shown.periods) and sum(p.count for p in shown.periods) == 10
    assert dict(shown.by_status)["received"] == 10
    bad = dict(doc, by_status={"received": "many"})
    with pytest.raises(figures.FiguresRefused):
        figures.checked(bad, 5)
    with pytest.raises(figures.FiguresRefused):
        figures.checked(
            dict(doc, reports_by_period=[{"from": "<script>", "to": "2026-01", "count": 9}]), 5
        )


def test_figures_travel_signed_and_show_on_the_portal(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    assert "No figures have been published yet" in client.get("/transparency").get_data(
        as_text=True
    )
    assert "transparency-link" not in client.get("/").get_data(as_text=True)
    store = DeskStore(home)
    for i in range(6):
        submit_report(client, f"MARKER-fig {i}")
    to_desk(app, store, desk_keys, tmp_path)
    first = cases.list_cases(store)[0].case
    replies.reply(store, desk_keys, first, "legal_aid", "We passed it on.")
    next_month = (dt.datetime.now(UTC).date().replace(day=28) + dt.timedelta(days=5)).replace(day=1)
    published = transparency.publish(store, desk_keys, 5, today=next_month)
    assert published["total_reports"] == 6 and published["referrals"] is None
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "outbox.tar"))
    page = client.get("/transparency").get_data(as_text=True)
    assert "Reports received" in page and ">6<" in page and "fewer than 5" in page
    assert "MARKER-fig" not in page
    assert "transparency-link" in client.get("/").get_data(as_text=True)
    for lang in ("fr", "es", "ar"):
        client.set_cookie("portal_lang", lang)
        translated = client.get("/transparency").get_data(as_text=True)
        assert f'lang="{lang}"' in translated and "Our work in numbers" not in translated
    client.delete_cookie("portal_lang")
    # An older publication arriving later never replaces a newer one.
    with app.app_context():
        from portal.server.web.services import services

        with services().db.transaction() as s:
            older = dict(published, made_on="2020-01-01", total_reports=999)
            figures.keep(s, older, 5)
    assert ">999<" not in client.get("/transparency").get_data(as_text=True)
    assert json.dumps(published)  # what the desk kept is what travelled
