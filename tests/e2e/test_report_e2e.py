"""A report from a real browser to the desk, in every Tor Browser security mode.

Submit from headless Chromium and from Firefox ESR (what Tor Browser is built
on, at its three security levels) against gunicorn, check what Chromium sent
with PyNaCl, export the inbox, import it on a fresh desk, and find the text.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from portal.desk.keystore import DeskKeys
from portal.protocol import codes
from portal.protocol.encoding import b64decode
from portal.protocol.envelopes import BODY_OVERHEAD, is_bucket, open_envelope
from portal.protocol.organization import Organization
from portal.protocol.pow import Challenge, is_solution, solve
from tests.harness.browsers import sent_requests
from tests.harness.drivers import EVERY_LEVEL, mode_of
from tests.harness.drivers import browser as open_browser
from tests.harness.firefox import AnyDriver, wait
from tests.harness.journeys import asks_before_leaving
from tests.harness.live import LivePortal, fresh_desk_copy
from tests.harness.web import PASSPHRASE, files_containing

# Generous bounds for a loaded machine: sealing itself takes under a second at
# every level now (WebCrypto is native without JIT too; make bench has figures).
SEAL_TIMEOUT = {"js": 60, "jitless": 120, "nojs": 60}


def _fill_report(drv: AnyDriver, marker: str) -> None:
    drv.find_element(By.ID, "what_happened").send_keys(f"{marker}\nThey came at night.")
    drv.find_element(By.ID, "where").send_keys("Near the river crossing")
    drv.find_element(By.ID, "who_responsible").send_keys("Men in uniform")
    drv.find_element(By.CSS_SELECTOR, "input[name=may_contact][value=yes]").click()
    drv.find_element(By.ID, "language").send_keys("العربية")


def _submit_and_read_code(drv: AnyDriver, mode: str) -> str:
    drv.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    code_el = wait(drv, SEAL_TIMEOUT[mode]).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-code]"))
    )
    wait(drv, 30).until(lambda d: len(code_el.text.replace(" ", "")) == 24)
    # Shown once, on the page or the next one: changing the language would lose it.
    hint = drv.find_element(By.CSS_SELECTOR, ".language-hint").text
    assert hint.startswith("Write your code down before you change the language"), hint
    # With JavaScript the code is on the page that sent the report: leaving it by a
    # link, Back or a language asks first (without it, reloading is harmless).
    assert asks_before_leaving(drv) is (mode != "nojs")
    return codes.normalise(code_el.text)


def _check_browser_request(
    drv: webdriver.Chrome, marker: str, code: str, org: Organization, keys: DeskKeys
) -> None:
    """What left the browser: ciphertext only, openable by PyNaCl, bound to the code."""
    requests = sent_requests(drv)
    for req in requests:
        assert marker not in (req["body"] or "") and code not in (req["body"] or "")
    posts = [r for r in requests if r["method"] == "POST"]
    # A proof-of-work challenge fetched while the reporter wrote, then the report.
    assert [p["url"].rsplit("/", 2)[-2:] for p in posts] == [["api", "pow"], ["api", "reports"]]
    body = json.loads(posts[1]["body"])
    proof = body["pow"]
    challenge = Challenge(b64decode(proof["challenge"]), bits=8, iterations=1000)
    assert is_solution(challenge, proof["nonce"]) and proof["nonce"] == solve(challenge)
    envelope = body["envelope"]
    assert envelope["sealed_by"] == "browser" and envelope["kind"] == "report"
    assert is_bucket(len(b64decode(envelope["body"])) - BODY_OVERHEAD)
    report = json.loads(open_envelope(json.dumps(envelope).encode(), keys.encrypt))
    assert report["form"] == "report" and report["form_version"] == 1
    assert report["fields"]["what_happened"].startswith(marker)
    assert report["fields"]["where"] == "Near the river crossing"
    assert report["fields"]["may_contact"] == "yes"
    assert "may_share" not in report["fields"]  # unanswered: not sealed at all
    assert report["fields"]["language"] == "العربية"
    # The code the page showed derives (hashlib PBKDF2) to the index and wrap key it sent.
    derived = codes.derive(code, org.code_salt, org.kdf)
    assert b64decode(body["mailbox"]["index"]) == derived.index
    sk = PrivateKey(SecretBox(derived.wrap).decrypt(b64decode(body["mailbox"]["wrapped_key"])))
    assert bytes(sk.public_key) == b64decode(report["reply_pk"])
    assert b64decode(body["mailbox"]["public_key"]) == bytes(sk.public_key)


def _desk_finds(live: LivePortal, desk_home: Path, tmp: Path, marker: str) -> dict[str, object]:
    bundle = tmp / "inbox.tar"
    out = live.command("export-inbox", str(bundle))
    assert out.returncode == 0, out.stderr
    home = fresh_desk_copy(desk_home, tmp / "desk")
    env = {"PORTAL_DESK_PASSPHRASE": PASSPHRASE}
    out = live.command("desk", "import", "--home", str(home), str(bundle), env=env)
    assert out.returncode == 0, out.stderr
    _, shown = live.desk_case(home, marker, env)
    item = shown["items"][0]
    assert item["content"]["fields"]["what_happened"].startswith(marker)
    return dict(item)


@pytest.mark.parametrize(("browser", "level"), EVERY_LEVEL)
def test_report_reaches_the_desk_and_nothing_readable_is_stored(
    browser: str,
    level: str,
    live: LivePortal,
    desk_home: Path,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    mode = mode_of(browser, level)
    marker = f"MARKER-{level}-{secrets.token_hex(6)}"
    with open_browser(browser, level) as drv:
        drv.get(live.url + "/report")
        browser_notice = drv.find_element(By.ID, "seal-notice-browser")
        server_notice = drv.find_element(By.ID, "seal-notice-server")
        if mode == "nojs":
            # Said plainly before submitting: the portal encrypts on arrival.
            assert server_notice.is_displayed() and not browser_notice.is_displayed()
            assert "encrypt your report when it arrives" in server_notice.text
        else:
            wait(drv, 30).until(lambda d: browser_notice.is_displayed())
            assert not server_notice.is_displayed()
            has_wasm = drv.execute_script("return typeof WebAssembly !== 'undefined'")
            assert has_wasm == (mode == "js")
        if isinstance(drv, webdriver.Chrome):
            drv.get_log("performance")  # forget the page load
        _fill_report(drv, marker)
        started = time.monotonic()
        code = _submit_and_read_code(drv, mode)
        print(f"\n{browser} {level}: report sealed and sent in {time.monotonic() - started:.1f}s")
        heading = drv.find_element(By.ID, "code-heading")
        assert heading.is_displayed()
        if mode != "nojs":
            assert drv.switch_to.active_element == heading
            # What left the browser is read through DevTools, which only Chromium
            # has; in Firefox the desk reading the report and sealed_by == "browser"
            # below stand for it (no recording proxy: not worth its weight here).
            if isinstance(drv, webdriver.Chrome):
                _check_browser_request(drv, marker, code, org, desk_keys)
        assert marker not in drv.page_source

    item = _desk_finds(live, desk_home, tmp_path, marker)
    assert item["sealed_by"] == ("server" if mode == "nojs" else "browser")

    for root in (live.data_dir, live.tmp_dir):
        assert files_containing(root, marker.encode()) == []
        assert files_containing(root, code.encode()) == []
    log = live.log_path.read_bytes()
    assert marker.encode() not in log and code.encode() not in log
    assert b"127.0.0.1" not in log.replace(live.url.encode(), b"")
