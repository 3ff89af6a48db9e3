"""All cases (or a filtered list) as one table: ``portal desk export-table``.

One row per case: its name and id, kind, status, dates, tags, assignment and
counts, the questionnaire (id and version) its report answered, then one column
per question, each answer in words as that very version put it
(``portal.desk.layout``); a question asked in several versions keeps one column,
and one of another questionnaire gets its own, its header naming it. CSV or
XLSX (openpyxl), chosen by the file's extension. Every cell is text, and a cell
a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``…) is prefixed
with an apostrophe (``stats.safe_cell``), in both formats. The export is logged
in the custody log (which cases, never their contents).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from portal.common.atomic import atomic_write
from portal.common.errors import NamedError
from portal.desk import cases as desk_cases
from portal.desk import layout
from portal.desk.binding import Unbound
from portal.desk.keystore import DeskKeys
from portal.desk.stats import safe_cell
from portal.desk.store import DeskStore

FORMATS = (".csv", ".xlsx")
COLUMNS = (
    "case",
    "case id",
    "kind",
    "status",
    "first received",
    "last activity",
    "tags",
    "assigned to",
    "reply due",
    "items",
    "follow-ups",
    "answers",
    "files",
    "replies",
    "questionnaire",
)


class TableRefused(NamedError, ValueError):
    """A table file of a kind we do not write."""

    REASON = "table"


def _first_report(store: DeskStore, keys: DeskKeys, case: str) -> dict[str, object]:
    for row in store.envelopes(case):
        if row.kind not in ("report", "answer"):
            continue
        try:
            return dict(desk_cases.open_item(store, keys, row).content)
        except (Unbound, OSError):
            continue
    return {}


def rows(
    store: DeskStore, keys: DeskKeys, chosen: desk_cases.Selection
) -> tuple[list[str], list[list[str]]]:
    """The header and one row per case the selection keeps, every cell text."""
    definitions = layout.known(store)
    cases: list[tuple[list[str], str, layout.Layout]] = []
    for r in desk_cases.select_cases(desk_cases.list_cases(store, keys), chosen, keys.person):
        content = _first_report(store, keys, r.case)
        kinds = dict.fromkeys(("message", "answer"), 0)
        for row in store.envelopes(r.case):
            if row.kind in kinds:
                kinds[row.kind] += 1
        laid = layout.lay_out(content, definitions)
        form = str(content.get("form", ""))
        cells = [
            r.name,
            r.case,
            "witness" if r.witness else "report",
            r.status,
            r.received,
            r.last_at,
            ", ".join(r.tags),
            r.assignee or "",
            r.due or "",
            str(r.envelopes),
            str(kinds["message"]),
            str(kinds["answer"]),
            str(r.files),
            str(r.replies),
            laid.form if content else "",
        ]
        cases.append((cells, form, laid))
    columns: dict[tuple[str, str], str] = {}  # (questionnaire, question) -> header
    for _cells, form, laid in cases:
        for field in laid.rows:
            columns.setdefault((form, field.field), field.label)
    several = len({form for form, _ in columns}) > 1
    header = [*COLUMNS, *(f"{h} [{f}]" if several else h for (f, _q), h in columns.items())]
    out = []
    for cells, form, laid in cases:
        answers = {(form, field.field): field.value for field in laid.rows}
        out.append([*cells, *(answers.get(key, "") for key in columns)])
    return header, out


def export_table(
    store: DeskStore, keys: DeskKeys, out: Path, chosen: desk_cases.Selection | None = None
) -> int:
    """Write the table to ``out`` (.csv or .xlsx); returns the number of cases."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise TableRefused(f"write a .csv or an .xlsx file, not {out.name!r}")
    header, body = rows(store, keys, chosen or desk_cases.Selection())
    safe = [[safe_cell(cell) for cell in row] for row in [header, *body]]
    if suffix == ".csv":
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerows(safe)
        data = text.getvalue().encode("utf-8-sig")  # the BOM tells spreadsheets it is UTF-8
    else:
        data = _xlsx(safe)
    atomic_write(out, data)
    store.custody.append("table", keys.person, file=out.name, cases=[row[1] for row in body])
    return len(body)


def _xlsx(table: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "cases"
    for r, row in enumerate(table, start=1):
        for c, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=c)
            cell.value = value
            cell.data_type = "s"  # text, never a formula, whatever it starts with
    sheet.freeze_panes = "C2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
