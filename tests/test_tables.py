"""All cases as one table (CSV or XLSX), with formula injection neutralised."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from portal.cli import main
from portal.desk import cases, casework, stats, tables
from portal.desk.custody import CustodyLog
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from tests.harness.loop import submit_report, to_desk
from tests.harness.web import PASSPHRASE, files_containing

HOSTILE = ('=HYPERLINK("http://x.example","click")', "+1+2", "-3", "@SUM(A1)", "\tTAB")


@pytest.fixture
def store(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> DeskStore:
    for text in HOSTILE:
        submit_report(client, text)
    submit_report(client, "a plain account, with a comma")
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    plain = next(r.case for r in cases.list_cases(store) if r.envelopes)
    casework.record(store, desk_keys, plain, "tags", "=cmd|' /C calc'!A0, detention")
    return store


def test_csv_has_one_row_per_case_and_no_formula(
    store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    out = tmp_path / "cases.csv"
    assert tables.export_table(store, desk_keys, out) == 6
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["case", "case id", "kind", "status"] and "What happened?" in header
    what = header.index("What happened?")
    texts = {row[what] for row in body}
    for text in HOSTILE:
        assert "'" + text in texts and text not in texts
    assert "a plain account, with a comma" in texts
    tags = {row[header.index("tags")] for row in body}
    assert "'=cmd|' /C calc'!A0, detention" in tags
    for row in body:
        assert not row or all(not cell.startswith(stats.FORMULA_STARTS) for cell in row)
    assert CustodyLog(store.home / "custody.log").entries()[-1]["event"] == "table"


def test_xlsx_holds_only_text_cells(store: DeskStore, desk_keys: DeskKeys, tmp_path: Path) -> None:
    out = tmp_path / "cases.xlsx"
    tables.export_table(store, desk_keys, out, cases.Selection(tag="detention"))
    with zipfile.ZipFile(out) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet and b"<f " not in sheet  # no formula anywhere
    book = load_workbook(out)
    ws = book["cases"]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert len(values) == 2  # the header and the one tagged case
    assert all(c.data_type == "s" for row in ws.iter_rows() for c in row if c.value is not None)
    assert "'=cmd|' /C calc'!A0, detention" in values[1]


def test_export_table_on_the_cli(
    store: DeskStore, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    bad = runner.invoke(
        main, ["desk", "export-table", "--home", str(home), "--out", str(tmp_path / "x.ods")]
    )
    assert bad.exit_code != 0 and ".csv or an .xlsx" in bad.output
    ok = runner.invoke(
        main,
        [
            "desk",
            "export-table",
            "--home",
            str(home),
            "--out",
            str(tmp_path / "t.csv"),
            "--show",
            "received",
        ],
    )
    assert ok.exit_code == 0 and "wrote 6 case(s)" in ok.output
    # The table holds plaintext where staff asked for it, and nowhere else.
    assert files_containing(home, b"a plain account") == []
