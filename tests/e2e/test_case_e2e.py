"""The whole reporter loop in a real browser, with JavaScript on and off:

submit → export → desk reply → outbox → import → open with code → read reply →
confirm new code → old code refused → new code works → follow-up reaches the desk.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from portal.common.db import Database
from portal.protocol import codes
from portal.protocol.encoding import b64decode
from portal.protocol.replies import ReplyItem, seal_reply
from portal.server.models import Reply
from tests.harness.browsers import chromium, sent_requests, wait
from tests.harness.drivers import browser as open_browser
from tests.harness.drivers import mode_of
from tests.harness.journeys import open_case, submit, wait_for_case
from tests.harness.live import DESK_ENV, LivePortal, cli, fresh_desk_copy
from tests.harness.web import files_containing

WAIT = 90


def wait_for_refusal(drv: WebDriver) -> str:
    el = wait(drv, WAIT).until(
        lambda d: next(
            (
                e
                for e in d.find_elements(By.CSS_SELECTOR, "#js-error, #error-summary")
                if e.is_displayed() and e.text
            ),
            None,
        )
    )
    return str(el.text)


def wait_for_heading(drv: WebDriver, text: str) -> None:
    """After a no-JS form post: wait for the next page, not the one being left."""
    wait(drv, WAIT).until(lambda d: any(h.text == text for h in d.find_elements(By.TAG_NAME, "h1")))


def new_code(drv: WebDriver) -> str:
    el = drv.find_element(By.CSS_SELECTOR, "[data-new-code]")
    wait(drv, 30).until(lambda d: len(el.text.replace(" ", "")) == 24)
    return codes.normalise(el.text)


def desk_round(live: LivePortal, home: Path, tmp: Path, marker: str, reply: str) -> str:
    """Carry the inbox to the desk, reply to the case holding ``marker``, carry it back."""
    cli(live, "export-inbox", str(tmp / "inbox.tar"))
    cli(live, "desk", "import", "--home", str(home), str(tmp / "inbox.tar"))
    case, shown = live.desk_case(home, marker, DESK_ENV)
    assert shown["items"][0]["content"]["fields"]["what_happened"].startswith(marker)
    cli(live, "desk", "reply", case, "--home", str(home), "--status", "in_review", "--text", reply)
    cli(live, "desk", "export", "--home", str(home), str(tmp / "outbox.tar"))
    cli(live, "import-outbox", str(tmp / "outbox.tar"))
    return case


@pytest.mark.parametrize(
    ("browser", "level"),
    [
        ("chromium", "js"),
        ("chromium", "nojs"),
        ("firefox", "standard"),
        ("firefox", "safer"),
        ("firefox", "safest"),
    ],
)
def test_full_case_loop_in_the_browser(
    browser: str, level: str, live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    mode = "nojs" if mode_of(browser, level) == "nojs" else "js"
    marker = f"MARKER-case-{browser}-{level}-{secrets.token_hex(4)}"
    reply = f"REPLY-{secrets.token_hex(4)} We read it. <script>alert(1)</script> <b>not bold</b>"
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    with open_browser(browser, level) as drv:
        code = submit(drv, live, marker)
    case_id = desk_round(live, home, tmp_path, marker, reply)

    with open_browser(browser, level) as drv:
        if isinstance(drv, webdriver.Chrome):
            drv.get_log("performance")
        # Typed in Arabic-Indic digits with dashes: normalised like any other input.
        typed = "-".join(
            "".join(chr(0x660 + int(d)) for d in code[i : i + 4]) for i in range(0, 24, 4)
        )
        open_case(drv, live, typed)
        wait_for_case(drv)
        replies = drv.find_elements(By.CSS_SELECTOR, "#reply-list .reply-text")
        assert [r.text for r in replies] == [reply]  # shown as text, markup and all
        assert drv.find_elements(By.CSS_SELECTOR, "#reply-list script, #reply-list b") == []
        statuses = [
            s.text for s in drv.find_elements(By.CSS_SELECTOR, "#status-list .status-label")
        ]
        assert statuses == ["Received", "In review"]
        assert "Your report" in drv.find_element(By.ID, "sent-list").text
        fresh = new_code(drv)
        assert fresh != code
        last = drv.find_element(By.CSS_SELECTOR, "[data-new-code] .code-last")
        assert last.text == fresh[-4:]  # the group to type, underlined

        wrong = "0000" if fresh[-4:] != "0000" else "1111"
        drv.find_element(By.ID, "last_group").send_keys(wrong)
        drv.find_element(By.CSS_SELECTOR, "#confirm-form button").click()
        # The same page says the digits do not match, the new code still there.
        wait(drv, WAIT).until(lambda d: d.find_element(By.ID, "confirm-error").is_displayed())
        assert new_code(drv) == fresh
        group = drv.find_element(By.ID, "last_group")
        group.clear()
        group.send_keys(fresh[-4:])
        drv.find_element(By.CSS_SELECTOR, "form[action$='/case/confirm'] button").click()
        # Confirmed, and the case stays open: the follow-up goes from the same page.
        wait(drv, WAIT).until(lambda d: d.find_element(By.ID, "confirm-done").is_displayed())
        assert fresh[-4:] in drv.find_element(By.ID, "confirm-done").text
        follow_up = f"FOLLOWUP-{secrets.token_hex(4)}"
        drv.find_element(By.ID, "message").send_keys(follow_up)
        drv.find_element(By.CSS_SELECTOR, "#message-form button[type=submit]").click()
        done = "message-done" if mode == "js" else "message-done-nojs"
        wait(drv, WAIT).until(lambda d: d.find_element(By.ID, done).is_displayed())
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sent-list li")) == 2
        if isinstance(drv, webdriver.Chrome) and mode == "js":
            for req in sent_requests(drv):
                body = req["body"] or ""
                for secret in (code, fresh, follow_up, reply):
                    assert secret not in body

    with open_browser(browser, level) as drv:
        open_case(drv, live, codes.format_code(code))
        assert "could not open a case" in wait_for_refusal(drv)
        open_case(drv, live, codes.format_code(fresh))
        wait_for_case(drv)

    cli(live, "export-inbox", str(tmp_path / "inbox2.tar"))
    cli(live, "desk", "import", "--home", str(home), str(tmp_path / "inbox2.tar"))
    shown = json.loads(cli(live, "desk", "show", case_id, "--home", str(home), "--json"))
    assert [i["kind"] for i in shown["items"]] == ["report", "message"]
    assert shown["items"][1]["content"]["fields"]["message"] == follow_up
    assert shown["items"][1]["sealed_by"] == ("browser" if mode == "js" else "server")
    for secret in (marker, reply.split()[0], follow_up, code, fresh):
        assert files_containing(live.data_dir, secret.encode()) == []
        assert files_containing(live.tmp_dir, secret.encode()) == []


def test_with_javascript_a_file_alone_is_a_message(live: LivePortal, tmp_path: Path) -> None:
    """A photo found after the report goes to the case without words; Send with
    neither words nor a file says it wants one or the other, and sends nothing."""
    photo = tmp_path / "later.jpg"
    photo.write_bytes(b"MARKER-later" + secrets.token_bytes(20_000))
    with chromium("js") as drv:
        code = submit(drv, live, f"MARKER-{secrets.token_hex(4)}")
        open_case(drv, live, code)
        wait_for_case(drv)
        send = "#message-form button[type=submit]"
        drv.find_element(By.CSS_SELECTOR, send).click()
        error = drv.find_element(By.ID, "message-error")
        wait(drv, WAIT).until(lambda _d: error.is_displayed())
        assert "write a message or add a file" in error.text
        drv.find_element(By.ID, "files").send_keys(str(photo))
        drv.find_element(By.CSS_SELECTOR, send).click()  # honoured once the file is sent
        wait(drv, WAIT).until(lambda d: d.find_element(By.ID, "message-done").is_displayed())
        assert len(drv.find_elements(By.CSS_SELECTOR, "#sent-list li")) == 2


def test_a_reply_signed_by_another_key_is_shown_as_invalid(
    live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    marker = f"MARKER-forge-{secrets.token_hex(4)}"
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    with chromium("js") as drv:
        code = submit(drv, live, marker)
    case_id = desk_round(live, home, tmp_path, marker, "the genuine reply")
    shown = json.loads(cli(live, "desk", "show", case_id, "--home", str(home), "--json"))
    reporter_pk = b64decode(shown["items"][0]["content"]["reply_pk"])
    # A compromised server plants a reply signed with a key that is not the desk's.
    forged = ReplyItem(
        mailbox=case_id,
        seq=2,
        date="2026-01-01",
        status="closed",
        text="FORGED come to this address",
    )
    db = Database(f"sqlite:///{live.data_dir / 'portal.sqlite'}")
    today = __import__("datetime").date.today()
    with db.transaction() as s:
        genuine = s.query(Reply).filter(Reply.mailbox_id == case_id).one()
        s.add(
            Reply(
                id=secrets.token_hex(16),
                mailbox_id=case_id,
                seq=2,
                sealed=seal_reply(forged, SigningKey.generate(), reporter_pk),
                received_on=today,
            )
        )
        # And replays the genuine, desk-signed item as if it were a newer one.
        s.add(
            Reply(
                id=secrets.token_hex(16),
                mailbox_id=case_id,
                seq=3,
                sealed=genuine.sealed,
                received_on=today,
            )
        )
    db.engine.dispose()
    with chromium("js") as drv:
        open_case(drv, live, code)
        wait_for_case(drv)
        items = drv.find_elements(By.CSS_SELECTOR, "#reply-list .reply")
        assert len(items) == 3
        assert items[0].find_element(By.CSS_SELECTOR, ".reply-text").text == "the genuine reply"
        for planted in items[1:]:
            assert "reply-invalid" in planted.get_attribute("class")
            assert planted.find_element(By.CSS_SELECTOR, ".reply-invalid-text").is_displayed()
        assert "FORGED" not in drv.page_source
        statuses = [
            s.text for s in drv.find_elements(By.CSS_SELECTOR, "#status-list .status-label")
        ]
        assert statuses == ["Received", "In review"]  # the forged "closed" is not believed
