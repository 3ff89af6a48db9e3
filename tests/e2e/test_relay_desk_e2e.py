"""Relay staff and the desk's web interface, driven in headless Chromium:

a report is carried out by a relay account (real TOTP) through the portal's
pages, worked on the desk served by `portal desk serve`, and the signed outbox
is carried back in through the relay pages; the reporter then reads the reply.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from portal.desk.custody import CustodyLog
from tests.harness.browsers import chromium, wait, wait_for_download
from tests.harness.journeys import open_case, submit, wait_for_case
from tests.harness.live import BIN, ROOT, LivePortal, fresh_desk_copy
from tests.harness.web import PASSPHRASE


@pytest.fixture
def desk_server(desk_home: Path, tmp_path: Path, live: LivePortal) -> Iterator[tuple[str, Path]]:
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    proc = subprocess.Popen(
        [str(BIN / "portal"), "desk", "serve", "--home", str(home)],
        cwd=ROOT,
        env=live.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
    assert match, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    try:
        yield match.group(1), home
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _relay_login(drv: object, live: LivePortal, account: dict[str, str]) -> None:
    drv.get(live.relay_url + "/staff/")  # type: ignore[attr-defined]
    find = drv.find_element  # type: ignore[attr-defined]
    find(By.ID, "name").send_keys(account["name"])
    find(By.ID, "passphrase").send_keys(account["passphrase"])
    find(By.ID, "totp").send_keys(pyotp.TOTP(account["totp_secret"]).now())
    find(By.CSS_SELECTOR, "form[action$='/staff/login'] button").click()
    wait(drv, 20).until(lambda d: d.find_element(By.ID, "download-inbox"))  # type: ignore[arg-type]


def test_relay_and_desk_carry_a_report_and_its_reply(
    live: LivePortal, desk_server: tuple[str, Path], tmp_path: Path
) -> None:
    desk_url, home = desk_server
    marker = f"MARKER-relay-{secrets.token_hex(4)}"
    with chromium("js") as drv:
        code = submit(drv, live, marker)
    made = live.portal("staff", "add", f"relay{secrets.token_hex(3)}", "--json")
    assert made.returncode == 0, made.stderr
    account = json.loads(made.stdout)

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium("js", downloads=str(downloads)) as drv:
        _relay_login(drv, live, account)
        assert marker not in drv.page_source
        drv.find_element(By.ID, "download-inbox").click()
        inbox = wait_for_download(str(downloads), ".tar")

        # The desk, in the same browser: unlock, import, read, reply, export.
        drv.get(desk_url)
        drv.find_element(By.ID, "passphrase").send_keys(PASSPHRASE)
        drv.find_element(By.CSS_SELECTOR, "form[action='/unlock'] button").click()
        wait(drv, 30).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Cases")
        drv.get(desk_url.split("/?")[0] + "/import")
        drv.find_element(By.ID, "inbox").send_keys(inbox)
        drv.find_element(By.CSS_SELECTOR, "form[action='/import'] button").click()
        result = wait(drv, 30).until(lambda d: d.find_element(By.ID, "import-result"))
        assert "Imported" in result.text
        Path(inbox).unlink()
        drv.find_element(By.LINK_TEXT, "Cases").click()
        links = drv.find_elements(By.CSS_SELECTOR, ".case-table a")
        for i in range(len(links)):
            drv.find_elements(By.CSS_SELECTOR, ".case-table a")[i].click()
            if marker in drv.find_element(By.ID, "main").text:
                break
            drv.back()
        else:
            raise AssertionError("the desk does not show the report")
        # The browser sealed the language of its pages inside the report.
        assert "The sender's pages were in English." in drv.find_element(By.ID, "main").text
        Select(drv.find_element(By.ID, "status")).select_by_value("more_info")
        reply = f"REPLY-{secrets.token_hex(4)} Could you tell us the date?"
        drv.find_element(By.ID, "text").send_keys(reply)
        drv.find_element(By.CSS_SELECTOR, "#reply-form button").click()
        wait(drv, 20).until(lambda d: reply in d.find_element(By.ID, "main").text)
        drv.find_element(By.LINK_TEXT, "Export outbox").click()
        drv.find_element(By.ID, "export-button").click()
        outbox = wait_for_download(str(downloads), ".tar")

        # Back on the relay: upload the outbox.
        drv.get(live.relay_url + "/staff/")
        drv.find_element(By.ID, "outbox").send_keys(outbox)
        drv.find_element(By.CSS_SELECTOR, "form[action$='/staff/outbox'] button").click()
        applied = wait(drv, 30).until(lambda d: d.find_element(By.ID, "outbox-applied"))
        assert "1 reply item(s)" in applied.text and "1 envelope(s) acknowledged" in applied.text

    with chromium("nojs") as drv:
        open_case(drv, live, code)
        wait_for_case(drv)
        assert reply in drv.find_element(By.ID, "reply-list").text
        assert "More information needed" in drv.find_element(By.ID, "status-list").text

    verified = live.portal("desk", "verify-log", "--home", str(home))
    assert verified.returncode == 0 and "custody log intact" in verified.stdout
    events = [e["event"] for e in CustodyLog(home / "custody.log").entries()]
    # The page shown again after saving the reply is a second view.
    assert events == ["import", "view", "reply", "view", "export"]


def test_the_desk_refuses_strangers_and_lets_the_cli_work_beside_it(
    live: LivePortal, desk_server: tuple[str, Path]
) -> None:
    desk_url, home = desk_server
    bare = desk_url.split("/?")[0] + "/cases"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bare, timeout=5)  # noqa: S310 - loopback
    assert info.value.code == 403
    beside = live.portal(
        "desk", "cases", "--home", str(home), env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE}, timeout=60
    )
    assert beside.returncode == 0, beside.stderr
