"""Evidence files from a real browser to the desk, byte for byte.

JS on: several files, one of them a JPEG whose EXIF/GPS segment must be removed
in the browser, and one large enough to upload in several parts while the
network drops out for a few seconds (the upload must resume). JIT/WebAssembly
off: a small file. JS off: the server encrypts the multipart stream on arrival.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from portal.protocol.organization import Organization
from tests.harness.browsers import chromium, sent_requests, wait
from tests.harness.drivers import browser as open_browser
from tests.harness.drivers import mode_of
from tests.harness.http import Session
from tests.harness.live import DESK_ENV, LivePortal, fresh_desk_copy
from tests.harness.proxy import Proxy, through
from tests.harness.proxy import proxy as proxy_server
from tests.harness.reporters import Timings, open_case
from tests.harness.web import files_containing


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_gps(tag: bytes) -> tuple[bytes, bytes]:
    """A JPEG-structured file with an EXIF segment, and what it must become."""
    soi, eoi = b"\xff\xd8", b"\xff\xd9"
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    exif = _segment(0xE1, b"Exif\x00\x00GPS 51.5007N 0.1246W " + tag + b" PhoneModel X")
    comment = _segment(0xFE, b"taken by " + tag)
    dqt = _segment(0xDB, bytes(65))
    sos = _segment(0xDA, bytes(10)) + os.urandom(5000) + eoi
    original = soi + app0 + exif + dqt + comment + sos
    return original, soi + app0 + dqt + sos


def _write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _report_page(drv: object, live: LivePortal, words: str) -> None:
    """The report page, with ``words`` as what happened."""
    drv.get(live.url + "/report")  # type: ignore[attr-defined]
    drv.find_element(By.ID, "what_happened").send_keys(words)  # type: ignore[attr-defined]


def _wait_files_sent(drv: object, count: int, seconds: float) -> None:
    def done(d: object) -> bool:
        states = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#file-list .file-state")]  # type: ignore[attr-defined]
        assert not any("could not" in s or "too" in s for s in states), states
        return len(states) == count and all(s.startswith("sent") for s in states)

    wait(drv, seconds).until(done)  # type: ignore[arg-type]


def _submit_and_code(drv: object, seconds: float) -> None:
    drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()  # type: ignore[attr-defined]
    _code_shown(drv, seconds)


def _code_shown(drv: object, seconds: float) -> None:
    # Found afresh on every poll: a no-JS post replaces the page under us.
    wait(drv, seconds).until(  # type: ignore[arg-type]
        lambda d: any(
            e.is_displayed() and len(e.text.replace(" ", "")) == 24
            for e in d.find_elements(By.CSS_SELECTOR, "[data-code]")
        )
    )


def _desk_saves(live: LivePortal, desk_home: Path, tmp: Path, marker: str) -> tuple[Path, dict]:  # type: ignore[type-arg]
    home = fresh_desk_copy(desk_home, tmp / "desk")
    assert live.command("export-inbox", str(tmp / "inbox.tar")).returncode == 0
    out = live.command("desk", "import", "--home", str(home), str(tmp / "inbox.tar"), env=DESK_ENV)
    assert out.returncode == 0, out.stderr
    case, shown = live.desk_case(home, marker, DESK_ENV)
    assert shown["items"][0]["content"]["fields"]["what_happened"] == marker
    saved = tmp / "saved"
    out = live.command("desk", "save", case, "--home", str(home), "--out", str(saved), env=DESK_ENV)
    assert out.returncode == 0, out.stderr + out.stdout
    return saved, shown


def test_files_with_javascript_resume_strip_and_arrive_identical(
    live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    marker = f"MARKER-files-{secrets.token_hex(4)}"
    src = tmp_path / "src"
    src.mkdir()
    small = os.urandom(10_000)
    big = b"MARKER-big" + os.urandom(6 * 1024 * 1024)
    photo, stripped = jpeg_with_gps(marker.encode())
    paths = [
        _write(src, "notes.txt", small),
        _write(src, "video.mp4", big),
        _write(src, "photo.jpg", photo),
    ]
    with chromium("js") as drv:
        drv.get(live.url + "/report")
        limits = drv.find_element(By.ID, "files-limits").text
        assert "20 files" in limits  # shown before picking
        assert "location" in drv.find_element(By.ID, "metadata-notice").text
        drv.find_element(By.ID, "what_happened").send_keys(marker)
        # A slow link (about 1 MB/s up), so the big file is still on its way when
        # the network drops out; it must resume by itself.
        drv.execute_cdp_cmd("Network.enable", {})
        slow = {"latency": 20, "downloadThroughput": -1, "uploadThroughput": 1_000_000}
        drv.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, **slow})
        drv.get_log("performance")
        drv.find_element(By.ID, "files").send_keys("\n".join(paths))
        wait(drv, 60).until(
            lambda d: (
                float(
                    d.find_elements(By.CSS_SELECTOR, "#file-list progress")[1].get_attribute(
                        "value"
                    )
                )
                > 0
            )
        )
        drv.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, **slow})
        time.sleep(3)
        drv.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        _wait_files_sent(drv, 3, 180)
        requests = sent_requests(drv)
        puts = [r["url"] for r in requests if r["method"] == "PUT"]
        assert len(puts) > len(set(puts)), "no part was retried: the drop did not hit the upload"
        for body in (r["body"] or "" for r in requests):
            assert "MARKER-big" not in body
        assert "details removed" in drv.find_element(By.ID, "file-list").text
        # From the moment the report names its files until it is stored, they are
        # fixed: one removed then would still go with it. A slow link keeps the
        # send going while a Remove is pressed.
        drv.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 3000, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        wait(drv, 30).until(lambda d: not d.find_element(By.ID, "files").is_enabled())
        removes = drv.find_elements(By.CSS_SELECTOR, '#file-list [data-action="remove"]')
        assert len(removes) == 3 and not any(b.is_enabled() for b in removes)
        drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", removes[1])
        removes[1].click()  # the big one: a press on a button that is off does nothing
        assert len(drv.find_elements(By.CSS_SELECTOR, '#file-list [data-action="remove"]')) == 3
        _code_shown(drv, 90)

    for needle in (b"MARKER-big", marker.encode()):
        assert files_containing(live.data_dir, needle) == []
    saved, shown = _desk_saves(live, desk_home, tmp_path, marker)
    assert (saved / "notes.txt").read_bytes() == small
    assert (saved / "video.mp4").read_bytes() == big
    assert (saved / "photo.jpg").read_bytes() == stripped  # EXIF and comment gone, image intact
    files = {f["name"]: f for f in shown["items"][0]["files"]}
    assert files["photo.jpg"]["metadata_removed"] is True
    assert files["video.mp4"]["metadata_removed"] is False
    assert files["photo.jpg"]["sha256"] == hashlib.sha256(stripped).hexdigest()
    assert all(f["state"] == "verified" for f in files.values())
    sums = (saved / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(big).hexdigest()}  video.mp4" in sums


@pytest.mark.parametrize(
    ("browser", "level"),
    [
        ("chromium", "jitless"),
        ("chromium", "nojs"),
        ("firefox", "standard"),
        ("firefox", "safer"),
        ("firefox", "safest"),
    ],
)
def test_a_file_at_every_level_in_both_browsers(
    browser: str, level: str, live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    """A file of several chunks and two upload parts, byte for byte to the desk,
    with JavaScript on (WebCrypto, JIT or not) or off (the server encrypts)."""
    mode = mode_of(browser, level)
    marker = f"MARKER-{browser}-{level}-{secrets.token_hex(4)}"
    data = b"MARKER-filebody" + os.urandom(1_500_000)
    path = _write(tmp_path, "evidence.bin", data)
    with open_browser(browser, level) as drv:
        _report_page(drv, live, marker)
        drv.find_element(By.ID, "files").send_keys(path)
        if mode != "nojs":
            _wait_files_sent(drv, 1, 240)
        _submit_and_code(drv, 300)
    assert files_containing(live.data_dir, b"MARKER-filebody") == []
    assert files_containing(live.tmp_dir, b"MARKER-filebody") == []
    saved, shown = _desk_saves(live, desk_home, tmp_path, marker)
    assert (saved / "evidence.bin").read_bytes() == data
    assert shown["items"][0]["sealed_by"] == ("server" if mode == "nojs" else "browser")
    (f,) = shown["items"][0]["files"]
    assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["state"] == "verified"


def _upload_starts(drv: object) -> int:
    """How many uploads the page started (asked the portal for) since the last look."""
    sent = sent_requests(drv)  # type: ignore[arg-type]
    return sum(r["method"] == "POST" and r["url"].endswith("/api/uploads") for r in sent)


def _end_session(drv: object) -> None:
    """The session ends under the page, as after hours of writing: the browser holds
    no live session any more (the portal sees the same when it deletes one)."""
    drv.delete_cookie("portal_session")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("browser", "level"), [("chromium", "jitless"), ("firefox", "safer")])
def test_files_sent_before_the_session_ended_go_out_again_with_the_report(
    browser: str, level: str, live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    """The file was sent, then the session ended before Send, and the upload with it.
    The page learns it from its new token, sends the file again in the new session
    and seals the report to name it: the reporter adds nothing again, and the desk
    gets the file byte for byte."""
    marker = f"MARKER-again-{browser}-{secrets.token_hex(4)}"
    data = b"MARKER-again" + os.urandom(200_000)
    path = _write(tmp_path, "evidence.bin", data)
    with open_browser(browser, level) as drv:
        _report_page(drv, live, marker)
        drv.find_element(By.ID, "files").send_keys(path)
        _wait_files_sent(drv, 1, 120)
        _end_session(drv)
        _submit_and_code(drv, 180)
        assert not drv.find_element(By.ID, "js-error").is_displayed()
    saved, shown = _desk_saves(live, desk_home, tmp_path, marker)
    assert (saved / "evidence.bin").read_bytes() == data
    (f,) = shown["items"][0]["files"]
    assert f["state"] == "verified"


def test_a_file_whose_session_ends_mid_upload_starts_again_by_itself(
    live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    """The session ends while a file's parts are on their way (a slow link): the next
    part is refused for its token, the page takes a new one, finds the session
    new, and sends the whole file again in it."""
    marker = f"MARKER-midway-{secrets.token_hex(4)}"
    data = b"MARKER-midway" + os.urandom(3 * 1024 * 1024)
    path = _write(tmp_path, "video.mp4", data)
    with chromium("js") as drv:
        _report_page(drv, live, marker)
        drv.execute_cdp_cmd("Network.enable", {})
        slow = {"latency": 20, "downloadThroughput": -1, "uploadThroughput": 500_000}
        drv.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, **slow})
        drv.get_log("performance")
        drv.find_element(By.ID, "files").send_keys(path)
        wait(drv, 60).until(
            lambda d: (
                float(d.find_element(By.CSS_SELECTOR, "#file-list progress").get_attribute("value"))
                > 0
            )
        )
        _end_session(drv)
        drv.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        _wait_files_sent(drv, 1, 180)
        assert _upload_starts(drv) == 2, "the file did not start again in the new session"
        _submit_and_code(drv, 60)
        assert not drv.find_element(By.ID, "js-error").is_displayed()
    saved, _ = _desk_saves(live, desk_home, tmp_path, marker)
    assert (saved / "video.mp4").read_bytes() == data


def _throttle(drv: object, upload: int) -> None:
    """Limit what the page sends to ``upload`` bytes a second (-1: no limit)."""
    drv.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
    drv.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": upload},
    )


def test_on_a_slow_link_progress_moves_within_a_part_and_remove_frees_the_line(
    live: LivePortal, tmp_path: Path
) -> None:
    """At 100 kB/s a file's first 1 MiB part takes ten seconds: the bar must move
    before it has gone (a reporter watching a frozen bar thinks it stuck). The
    reporter then removes it for a small file: the part still on its way is
    stopped, so the small file goes out at once rather than after it."""
    big = _write(tmp_path, "big.mov", os.urandom(2_500_000))
    small = _write(tmp_path, "small.jpg", os.urandom(5_000))
    with chromium("js") as drv:
        _report_page(drv, live, "a file on a slow link")
        _throttle(drv, 100_000)
        drv.find_element(By.ID, "files").send_keys(big)
        bar = "#file-list progress"
        wait(drv, 8).until(  # the first part needs 10 s
            lambda d: float(d.find_element(By.CSS_SELECTOR, bar).get_attribute("value")) > 0
        )
        states = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#file-list .file-state")]
        assert not states[0].startswith("sent"), states
        drv.find_element(By.ID, "files").send_keys(small)  # waits its turn behind big.mov
        drv.find_element(By.CSS_SELECTOR, "#file-list [data-action=remove]").click()
        _wait_files_sent(drv, 1, 5)  # not the 5+ s big.mov's part still needed
        names = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#file-list .file-name")]
        assert names == ["small.jpg"], names


def test_a_file_added_after_the_session_ended_is_uploaded_once(
    live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    """The session ended before the file was chosen: its start is refused for the
    page's token, renewed into a new session and made there. The upload belongs to
    that session; it must not be taken for one of the old session's, started again,
    and leave a stray upload counted against the reporter's limits."""
    marker = f"MARKER-late-{secrets.token_hex(4)}"
    data = b"MARKER-late" + os.urandom(300_000)
    path = _write(tmp_path, "late.bin", data)
    with chromium("jitless") as drv:
        _report_page(drv, live, marker)
        _end_session(drv)
        drv.get_log("performance")
        drv.find_element(By.ID, "files").send_keys(path)
        _wait_files_sent(drv, 1, 120)
        assert _upload_starts(drv) == 2  # refused for the token, then made in the new session
        _submit_and_code(drv, 120)
        assert not drv.find_element(By.ID, "js-error").is_displayed()
    saved, _ = _desk_saves(live, desk_home, tmp_path, marker)
    assert (saved / "late.bin").read_bytes() == data


def test_a_report_whose_answer_is_lost_is_sent_again_and_stored_once(
    live: LivePortal, desk_home: Path, org: Organization, tmp_path: Path
) -> None:
    """The portal stores the report and its file, and the answer is lost on the
    way back (the proxy drops it, as a broken Tor circuit would). The page says
    it cannot tell whether the report arrived, never that nothing was stored;
    pressed again, it sends the same sealed report, is told the case is there,
    and shows the code it made. The desk finds one case, with its file, and that
    code opens it."""
    marker = f"MARKER-lost-{secrets.token_hex(4)}"
    data = b"MARKER-lost" + os.urandom(100_000)
    path = _write(tmp_path, "evidence.bin", data)
    with proxy_server() as proxy, chromium("js", extra_args=through(proxy)) as drv:
        _report_page(drv, live, marker)
        drv.find_element(By.ID, "files").send_keys(path)
        _wait_files_sent(drv, 1, 120)
        Proxy.lose_answers["/api/reports"] = 1
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        error = wait(drv, 90).until(
            lambda d: (
                d.find_element(By.ID, "js-error").is_displayed()
                and d.find_element(By.ID, "js-error").text
            )
        )
        assert Proxy.lost == ["/api/reports"]
        assert "cannot tell whether your report arrived" in error
        assert "Nothing" not in error
        _submit_and_code(drv, 90)
        code = drv.find_element(By.CSS_SELECTOR, "#code-panel [data-code]").text.replace(" ", "")
        assert not drv.find_element(By.ID, "arrived-before").is_displayed()
    saved, _ = _desk_saves(live, desk_home, tmp_path, marker)  # one case holds the marker
    assert (saved / "evidence.bin").read_bytes() == data
    assert open_case(Session(live.url), org, Timings(), code)
