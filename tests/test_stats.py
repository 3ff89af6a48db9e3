"""The desk's statistics: the figures, their CSV, and the inline SVG charts."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest

from portal.desk.stats import (
    CaseFacts,
    Duration,
    Stats,
    bar_chart,
    compute,
    hours,
    to_csv,
)
from portal.protocol.replies import STATUSES

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=1>',
    "' onmouseover='alert(1)",
    "]]><x/>&amp;",
    "</svg><script>alert(1)</script>",
]


def case(
    name: str = "bako-tifu-mera",
    *,
    opened: datetime = T0,
    kind: str = "report",
    status: str = "received",
    tags: tuple[str, ...] = (),
    reply_after: timedelta | None = None,
    closed_after: timedelta | None = None,
    referred: bool = False,
) -> CaseFacts:
    return CaseFacts(
        case=name,
        opened=opened,
        kind=kind,
        status=status,
        tags=tags,
        first_reply=None if reply_after is None else opened + reply_after,
        closed=None if closed_after is None else opened + closed_after,
        referred=referred,
    )


def replied_after(*hours_each: float) -> Stats:
    return compute(
        case(f"case-{i}", reply_after=timedelta(hours=h)) for i, h in enumerate(hours_each)
    )


def h(n: float) -> timedelta:
    return timedelta(hours=n)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - parsing our own output, to prove it is well formed


def all_text(root: ET.Element) -> list[str]:
    return [t for element in root.iter() for t in (element.text, element.tail) if t]


# --- durations -----------------------------------------------------------------


def test_median_of_an_odd_count_is_the_middle_one_and_p90_is_nearest_rank() -> None:
    # sorted: 1 2 4 8 16; median the 3rd; p90 at rank ceil(4.5) = 5
    stats = replied_after(16, 1, 8, 2, 4)
    assert stats.to_first_reply == Duration(count=5, median=h(4), p90=h(16))


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    # sorted: 1 2 3 10; median (2 + 3) / 2; p90 at rank ceil(3.6) = 4
    stats = replied_after(10, 3, 1, 2)
    assert stats.to_first_reply == Duration(count=4, median=h(2.5), p90=h(10))


def test_p90_of_ten_durations_is_the_ninth_not_the_largest() -> None:
    # 1..10 hours: rank ceil(9.0) = 9; median (5 + 6) / 2
    stats = replied_after(*range(10, 0, -1))
    assert stats.to_first_reply == Duration(count=10, median=h(5.5), p90=h(9))


def test_p90_of_eleven_durations_is_the_tenth() -> None:
    # 1..11 hours: rank ceil(9.9) = 10; median the 6th
    stats = replied_after(*range(1, 12))
    assert stats.to_first_reply == Duration(count=11, median=h(6), p90=h(10))


def test_a_single_case_is_its_own_median_and_p90() -> None:
    stats = replied_after(7.25)
    assert stats.to_first_reply == Duration(count=1, median=h(7.25), p90=h(7.25))


def test_durations_count_only_cases_that_have_the_date() -> None:
    stats = compute(
        [
            case("a", reply_after=h(2), closed_after=h(48)),
            case("b", reply_after=h(6)),
            case("c"),
        ]
    )
    assert stats.to_first_reply == Duration(count=2, median=h(4), p90=h(6))
    assert stats.to_close == Duration(count=1, median=h(48), p90=h(48))


def test_a_reply_dated_before_the_case_opened_counts_as_zero_not_negative() -> None:
    stats = compute([case("a", reply_after=h(-3)), case("b", reply_after=h(5))])
    assert stats.to_first_reply == Duration(count=2, median=h(2.5), p90=h(5))
    early_close = compute([case("a", closed_after=h(-1))])
    assert early_close.to_close == Duration(count=1, median=timedelta(0), p90=timedelta(0))


def test_durations_across_time_zones_are_real_elapsed_time() -> None:
    opened = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    replied = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=2)))  # 13:00 UTC
    facts = CaseFacts("a", opened, "report", "in_review", first_reply=replied)
    assert compute([facts]).to_first_reply.median == h(1)


def test_hours_is_for_display() -> None:
    assert hours(timedelta(minutes=90)) == 1.5
    assert hours(timedelta(0)) == 0.0


# --- counts --------------------------------------------------------------------


def test_months_with_no_case_are_zero_across_a_year_boundary() -> None:
    stats = compute(
        [
            case("a", opened=datetime(2026, 2, 3, tzinfo=UTC)),
            case("b", opened=datetime(2025, 11, 30, tzinfo=UTC)),
            case("c", opened=datetime(2025, 11, 1, tzinfo=UTC)),
        ]
    )
    assert stats.by_month == (("2025-11", 2), ("2025-12", 0), ("2026-01", 0), ("2026-02", 1))


def test_months_are_counted_in_utc() -> None:
    # 00:30 on 1 February in UTC+2 is still January in UTC
    local = datetime(2026, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert compute([case(opened=local)]).by_month == (("2026-01", 1),)


def test_one_month_of_cases_is_one_row() -> None:
    stats = compute([case("a"), case("b", opened=T0 + timedelta(days=5))])
    assert stats.by_month == (("2026-01", 2),)


def test_statuses_follow_the_protocol_order_with_zeros() -> None:
    stats = compute(
        [
            case("a", status="closed"),
            case("b", status="closed"),
            case("c", status="in_review"),
        ]
    )
    assert [status for status, _ in stats.by_status] == list(STATUSES)
    assert stats.by_status == (
        ("received", 0),
        ("in_review", 1),
        ("more_info", 0),
        ("legal_aid", 0),
        ("closed", 2),
    )


def test_kinds_are_both_listed_even_when_one_is_absent() -> None:
    stats = compute([case("a", kind="witness"), case("b", kind="witness")])
    assert stats.by_kind == (("report", 0), ("witness", 2))


def test_tags_rank_most_used_first_then_alphabetically() -> None:
    stats = compute(
        [
            case("a", tags=("police", "detention")),
            case("b", tags=("detention", "border")),
            case("c", tags=("land", "police")),
            case("d", tags=("detention",)),
        ]
    )
    assert stats.by_tag == (("detention", 3), ("police", 2), ("border", 1), ("land", 1))


def test_a_tag_repeated_on_one_case_counts_once() -> None:
    stats = compute([case("a", tags=("detention", "detention")), case("b", tags=("detention",))])
    assert stats.by_tag == (("detention", 2),)


def test_referrals_and_total() -> None:
    stats = compute(
        [
            case("a", status="legal_aid", referred=True),
            case("b", status="closed", referred=True, closed_after=h(1)),
            case("c"),
        ]
    )
    assert (stats.total, stats.referrals) == (3, 2)


def test_compute_accepts_any_iterable_once() -> None:
    stats = compute(case(f"c{i}", tags=("x",)) for i in range(3))
    assert stats.total == 3
    assert stats.by_tag == (("x", 3),)


def test_no_cases_give_zeros_and_no_durations() -> None:
    stats = compute([])
    assert stats == Stats(
        total=0,
        by_month=(),
        by_kind=(("report", 0), ("witness", 0)),
        by_status=tuple((status, 0) for status in STATUSES),
        by_tag=(),
        to_first_reply=Duration(count=0, median=None, p90=None),
        to_close=Duration(count=0, median=None, p90=None),
        referrals=0,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("opened", datetime(2026, 1, 1)),
        ("first_reply", datetime(2026, 1, 2)),
        ("closed", datetime(2026, 1, 3)),
        ("kind", "complaint"),
        ("status", "archived"),
    ],
)
def test_facts_refuse_naive_dates_and_unknown_kinds_or_statuses(field: str, value: object) -> None:
    fields: dict[str, object] = {"case": "a", "opened": T0, "kind": "report", "status": "closed"}
    fields[field] = value
    with pytest.raises(ValueError, match=field if field != "opened" else "time zone"):
        CaseFacts(**fields)  # type: ignore[arg-type]


def test_facts_refuse_a_list_of_tags() -> None:
    with pytest.raises(TypeError):
        CaseFacts("a", T0, "report", "closed", tags=["x"])  # type: ignore[arg-type]


# --- CSV -----------------------------------------------------------------------


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_reads_back_row_for_row() -> None:
    stats = compute(
        [
            case("a", opened=datetime(2025, 12, 5, tzinfo=UTC), tags=("detention",)),
            case(
                "b",
                status="closed",
                tags=("detention", 'land, "water"\nrights'),
                reply_after=h(12.5),
                closed_after=h(30),
                referred=True,
            ),
        ]
    )
    rows = read_csv(to_csv(stats))
    assert rows == [
        ["section", "key", "value"],
        ["cases", "total", "2"],
        ["month", "2025-12", "1"],
        ["month", "2026-01", "1"],
        ["kind", "report", "2"],
        ["kind", "witness", "0"],
        ["status", "received", "1"],
        ["status", "in_review", "0"],
        ["status", "more_info", "0"],
        ["status", "legal_aid", "0"],
        ["status", "closed", "1"],
        ["tag", "detention", "2"],
        ["tag", 'land, "water"\nrights', "1"],
        ["first_reply", "count", "1"],
        ["first_reply", "median_hours", "12.5"],
        ["first_reply", "p90_hours", "12.5"],
        ["close", "count", "1"],
        ["close", "median_hours", "30.0"],
        ["close", "p90_hours", "30.0"],
        ["referrals", "total", "1"],
    ]


def test_csv_lines_all_end_with_crlf() -> None:
    text = to_csv(compute([case(tags=("a",))]))
    assert text.endswith("\r\n")
    assert text.count("\n") == text.count("\r\n")


def test_csv_hours_are_rounded_to_two_decimals() -> None:
    stats = compute([case(reply_after=timedelta(minutes=20))])
    rows = read_csv(to_csv(stats))
    assert ["first_reply", "median_hours", "0.33"] in rows


def test_csv_of_no_cases_leaves_durations_empty() -> None:
    rows = read_csv(to_csv(compute([])))
    assert ["cases", "total", "0"] in rows
    assert ["first_reply", "median_hours", ""] in rows
    assert ["close", "p90_hours", ""] in rows
    assert not [row for row in rows if row[0] in ("month", "tag")]


@pytest.mark.parametrize(
    "tag",
    ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"],
)
def test_csv_tags_that_look_like_formulas_are_quoted(tag: str) -> None:
    rows = read_csv(to_csv(compute([case(tags=(tag,))])))
    assert ["tag", "'" + tag, "1"] in rows
    assert not any(
        cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row
    )


def test_csv_leaves_ordinary_tags_and_inner_signs_alone() -> None:
    rows = read_csv(to_csv(compute([case(tags=("a=b", "x-y", "'quoted"))])))
    tags = {row[1] for row in rows if row[0] == "tag"}
    assert tags == {"a=b", "x-y", "'quoted"}


# --- SVG -----------------------------------------------------------------------


def test_chart_is_an_accessible_image_named_by_its_own_title_and_desc() -> None:
    svg = bar_chart("Cases by kind", [("report", 5), ("witness", 2)], label="cases", id_prefix="k")
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "k-title k-desc"
    assert root.get("direction") == "ltr"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert (title.get("id"), title.text) == ("k-title", "Cases by kind")
    assert (desc.get("id"), desc.text) == ("k-desc", "cases: report: 5; witness: 2.")


def test_chart_has_one_bar_per_pair_with_a_tooltip_and_a_label() -> None:
    root = parse(bar_chart("Tags", [("a", 4), ("b", 2), ("c", 0)], label="cases"))
    rects = root.findall(f"{SVG}rect")
    tips = [rect.findtext(f"{SVG}title") for rect in rects]
    assert tips == ["a: 4", "b: 2", "c: 0"]
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert texts == ["Tags", "a", "4", "b", "2", "c", "0"]


def test_bars_scale_to_the_largest_count() -> None:
    root = parse(bar_chart("T", [("a", 4), ("b", 2), ("c", 1), ("d", 0)], label="cases"))
    widths = [float(rect.get("width", "nan")) for rect in root.findall(f"{SVG}rect")]
    assert widths[0] > 0
    assert widths[1] == pytest.approx(widths[0] / 2, abs=0.1)
    assert widths[2] == pytest.approx(widths[0] / 4, abs=0.1)
    assert widths[3] == 0
    svg_width = float(root.get("width", "nan"))
    assert all(
        float(rect.get("x", "nan")) + w <= svg_width
        for rect, w in zip(root.findall(f"{SVG}rect"), widths, strict=True)
    )


def test_all_zero_counts_draw_empty_bars_without_dividing_by_zero() -> None:
    root = parse(bar_chart("T", [("a", 0), ("b", 0)], label="cases"))
    assert [rect.get("width") for rect in root.findall(f"{SVG}rect")] == ["0.0", "0.0"]


def test_no_pairs_still_make_a_valid_chart_that_says_so() -> None:
    svg = bar_chart("Cases by tag", [], label="cases", empty="No tags yet.")
    root = parse(svg)
    assert root.findall(f"{SVG}rect") == []
    assert "No tags yet." in all_text(root)
    assert root.findtext(f"{SVG}desc") == "cases: No tags yet."


def test_charts_of_every_figure_of_no_cases_are_valid() -> None:
    stats = compute([])
    for title, bars in (
        ("By month", stats.by_month),
        ("By kind", stats.by_kind),
        ("By status", stats.by_status),
        ("By tag", stats.by_tag),
    ):
        assert parse(bar_chart(title, bars, label="cases")).get("role") == "img"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_tags_titles_and_labels_come_out_as_text(hostile: str) -> None:
    svg = bar_chart(hostile, [(hostile, 1)], label=hostile, empty=hostile)
    assert "<script" not in svg
    assert "<img" not in svg
    assert "<x/>" not in svg
    assert svg.count("</svg>") == 1
    root = parse(svg)
    assert {element.tag for element in root.iter()} <= {
        f"{SVG}{name}" for name in ("svg", "title", "desc", "text", "rect")
    }
    assert not [name for element in root.iter() for name in element.attrib if name.startswith("on")]
    # the parser gives back exactly what staff typed, as text
    assert root.findtext(f"{SVG}title") == hostile
    assert hostile in all_text(root)
    assert root.find(f"{SVG}rect/{SVG}title") is not None
    assert root.findtext(f"{SVG}rect/{SVG}title") == f"{hostile}: 1"


def test_hostile_text_is_escaped_with_html_escape_quote_true() -> None:
    svg = bar_chart("t", [('"><img src=x onerror=1>', 1)], label="cases")
    assert "&quot;&gt;&lt;img src=x onerror=1&gt;" in svg


def test_characters_xml_forbids_are_replaced_so_the_chart_still_parses() -> None:
    tag = "bad\x00\x1b\ud800tag"
    root = parse(bar_chart("T", [(tag, 1)], label="cases"))
    assert root.findtext(f"{SVG}rect/{SVG}title") == "bad\ufffd\ufffd\ufffdtag: 1"


def test_right_to_left_keys_keep_their_text_and_numbers_stay_ltr() -> None:
    root = parse(bar_chart("حسب الوسم", [("احتجاز", 3)], label="حالات", id_prefix="ar"))
    assert root.get("direction") == "ltr"
    assert "احتجاز" in all_text(root)
    assert root.findtext(f"{SVG}rect/{SVG}title") == "احتجاز: 3"


def test_long_keys_are_shortened_on_the_axis_but_whole_in_the_tooltip() -> None:
    key = "a very long tag typed by a member of staff"
    root = parse(bar_chart("T", [(key, 1)], label="cases"))
    axis = [t.text for t in root.findall(f"{SVG}text")][1]
    assert axis is not None and axis.endswith("…") and len(axis) == 26
    assert root.findtext(f"{SVG}rect/{SVG}title") == f"{key}: 1"


def test_ids_differ_between_charts_of_different_titles() -> None:
    first = parse(bar_chart("Cases by month", [], label="cases"))
    second = parse(bar_chart("Cases by tag", [], label="cases"))
    arabic = parse(bar_chart("حسب الشهر", [], label="cases"))
    other_arabic = parse(bar_chart("حسب الوسم", [], label="cases"))
    ids = [root.get("aria-labelledby") for root in (first, second, arabic, other_arabic)]
    assert len(set(ids)) == 4
    for root in (first, second, arabic, other_arabic):
        label_ids = (root.get("aria-labelledby") or "").split()
        assert [e.get("id") for e in root if e.get("id")] == label_ids
    assert (first.get("aria-labelledby") or "").startswith("chart-cases-by-month-")


@pytest.mark.parametrize("prefix", ["", "1abc", "a b", 'x"y', "a<b"])
def test_an_id_prefix_that_is_not_a_plain_id_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="id_prefix"):
        bar_chart("T", [], label="cases", id_prefix=prefix)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        bar_chart("T", [("a", -1)], label="cases")


def test_chart_has_no_script_style_or_external_reference() -> None:
    stats = compute([case(tags=("detention",), reply_after=h(1))])
    svg = bar_chart("Cases by tag", stats.by_tag, label="cases")
    lowered = svg.lower()
    for forbidden in ("<script", "<style", "href", "url(", "<image", "<foreignobject"):
        assert forbidden not in lowered
    root = parse(svg)
    assert {rect.get("fill") for rect in root.findall(f"{SVG}rect")} == {"#1d4f91"}
    assert root.get("fill") == "#111"
