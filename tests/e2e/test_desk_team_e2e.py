"""The desk as a team of two uses it, in headless Chromium against `portal desk
serve`: each person unlocks with their own passphrase, sees what is new to them,
finds a word in a follow-up, opens a picture only after a click, reads Arabic
testimony right to left, and a reply written past the idle lock survives it."""

from __future__ import annotations

import io
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from portal.desk import keystore
from portal.desk.store import DeskStore, WitnessInvitation
from tests.harness.a11y import axe_violations
from tests.harness.browsers import chromium, wait
from tests.harness.firefox import firefox
from tests.harness.live import BIN, ROOT, fresh_desk_copy
from tests.harness.loop import send_follow_up, submit_report, to_desk
from tests.harness.web import PASSPHRASE

BEA, BEA_PASS = "Bea", "bea's passphrase"
ARABIC = "رأيت الاعتقال عند الحاجز"
IDLE_SECONDS = 6


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def team_desk(
    app: Flask, client: FlaskClient, desk_home: Path, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    keys = keystore.unlock(home, PASSPHRASE)
    keystore.add_person(home, keys, BEA, BEA_PASS, cost="interactive")
    submit_report(client, ARABIC, [(_photo(), "photo.jpg")])
    code = submit_report(client, "a second report")
    send_follow_up(client, code, "the convoy left at dawn")
    to_desk(app, DeskStore(home), keys, tmp_path)
    proc = subprocess.Popen(
        [str(BIN / "portal"), "desk", "serve", "--home", str(home),
         "--idle-minutes", str(IDLE_SECONDS / 60)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
    assert match, line
    try:
        yield match.group(1), home
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _unlock(drv: object, person: str, passphrase: str) -> None:
    find = drv.find_element  # type: ignore[attr-defined]
    find(By.ID, "person").clear()
    find(By.ID, "person").send_keys(person)
    find(By.ID, "passphrase").send_keys(passphrase)
    find(By.CSS_SELECTOR, "form[action='/unlock'] button").click()
    wait(drv, 20).until(lambda d: d.find_element(By.ID, "me").text == person)  # type: ignore[arg-type]


# The desk's pages carry no script at all, so Firefox's levels differ for them
# only in whether JavaScript could run: Safest (it cannot) stands for the three.
BROWSERS: dict[str, Callable[[], AbstractContextManager[Any]]] = {
    "chromium": lambda: chromium("js"),
    "firefox-safest": lambda: firefox("safest"),
}


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_a_team_of_two_works_the_desk_without_losing_anything(
    team_desk: tuple[str, Path], browser: str
) -> None:
    url, home = team_desk
    base = url.split("/?")[0]
    with BROWSERS[browser]() as staff, BROWSERS[browser]() as bea:
        staff.get(url)
        _unlock(staff, "staff", PASSPHRASE)
        assert "2 cases have something new for you" in staff.find_element(By.ID, "main").text

        # Search finds a word that is only in a follow-up.
        staff.find_element(By.ID, "q").send_keys("convoy")
        staff.find_element(By.CSS_SELECTOR, "form[role='search'] button").click()
        hit = wait(staff, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, ".search-hit"))
        assert "follow-up" in hit.text and "convoy" in hit.text

        # The Arabic report: its testimony reads right to left; its picture waits for a click.
        staff.get(base + "/cases?q=" + "الاعتقال")
        staff.find_element(By.CSS_SELECTOR, ".search-hit a").click()
        value = wait(staff, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, "dd.field-value"))
        assert value.text == ARABIC
        assert (
            staff.execute_script("return getComputedStyle(arguments[0]).direction", value) == "rtl"
        )
        assert staff.find_elements(By.TAG_NAME, "img") == []
        case_url = staff.current_url
        staff.find_element(By.CSS_SELECTOR, "a.view-file").click()
        picture = wait(staff, 20).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "img.evidence-image")
        )
        assert staff.execute_script("return arguments[0].naturalWidth", picture) == 40

        # Staff opened that case; Bea did not: it is still new for her only. (Bea
        # unlocks only now: her idle lock is seconds long, and staff's steps on a
        # busy machine took longer than that.)
        staff.get(base + "/cases")
        assert "1 case has something new for you" in staff.find_element(By.ID, "main").text
        bea.get(url)
        _unlock(bea, BEA, BEA_PASS)
        assert "2 cases have something new for you" in bea.find_element(By.ID, "main").text

        # Bea writes a reply for longer than the idle lock, then saves it.
        bea.get(case_url)
        words = "We read your account and will call you on Monday."
        bea.find_element(By.ID, "text").send_keys(words)
        time.sleep(IDLE_SECONDS + 1.5)
        bea.find_element(By.CSS_SELECTOR, "#reply-form button").click()
        wait(bea, 20).until(lambda d: d.find_element(By.ID, "passphrase"))
        assert words.encode() not in b"".join(
            p.read_bytes() for p in home.rglob("*") if p.is_file()
        )
        _unlock(bea, BEA, BEA_PASS)
        restored = bea.find_element(By.ID, "text")
        assert restored.get_attribute("value") == words
        assert bea.find_element(By.ID, "draft-restored").is_displayed()
        bea.find_element(By.CSS_SELECTOR, "#reply-form button").click()
        wait(bea, 20).until(lambda d: "Reply saved" in d.find_element(By.ID, "main").text)
        bea.refresh()  # a GET after the redirect: nothing is sent twice
        assert bea.find_element(By.ID, "history").text.count(words) == 1
        assert BEA in bea.find_element(By.ID, "history").text

        # Staff tag the case, then invite a witness about it and reload the sheet.
        staff.get(case_url)
        if staff.find_elements(By.ID, "passphrase"):  # idle while Bea wrote: locked
            _unlock(staff, "staff", PASSPHRASE)
        tags = staff.find_element(By.ID, "tags")
        tags.clear()
        tags.send_keys("detention, north")
        staff.find_element(By.CSS_SELECTOR, "form:has(#tags) button").click()
        wait(staff, 20).until(lambda d: "worked=tags" in d.current_url)
        assert staff.find_element(By.ID, "tags").get_attribute("value") == "detention, north"
        staff.find_element(By.ID, "invite-about").click()
        staff.find_element(By.ID, "questions").send_keys("What did you see at the checkpoint?")
        staff.find_element(By.CSS_SELECTOR, "form[action='/invite'] button").click()
        code = wait(staff, 20).until(lambda d: d.find_element(By.ID, "invitation-code")).text
        staff.refresh()
        assert staff.find_element(By.ID, "invitation-code").text == code
        with DeskStore(home).db.reading() as s:
            assert s.scalar(select(func.count()).select_from(WitnessInvitation)) == 1


DESK_PAGES = ("/cases", "/cases?q=convoy", "/import", "/invite", "/export", "/damaged",
              "/referrals", "/stats", "/people", "/settings")  # fmt: skip


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_axe_finds_nothing_on_any_desk_page(team_desk: tuple[str, Path], lang: str) -> None:
    url, _home = team_desk
    base = url.split("/?")[0]
    with chromium("js") as drv:
        drv.get(url)
        drv.get(f"{base}/language/{lang}?next=/")
        assert drv.find_element(By.TAG_NAME, "html").get_attribute("dir") == (
            "rtl" if lang == "ar" else "ltr"
        )
        assert axe_violations(drv) == []  # the unlock page
        _unlock(drv, "staff", PASSPHRASE)
        first_case = drv.find_element(By.CSS_SELECTOR, ".case-table a").get_attribute("href")
        pages = [*DESK_PAGES, first_case.removeprefix(base)]
        drv.get(first_case)
        view = drv.find_elements(By.CSS_SELECTOR, "a.view-file")
        if view:
            pages.append(view[0].get_attribute("href").removeprefix(base))
        for page in pages:
            drv.get(base + page)
            assert drv.find_element(By.ID, "me").text == "staff", page
            assert drv.find_elements(By.TAG_NAME, "script") == [], page  # scriptless pages
            assert axe_violations(drv) == [], page
