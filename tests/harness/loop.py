"""Helpers that move work around the loop: portal → inbox → desk → outbox → portal."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from portal.desk import cases
from portal.desk.keystore import DeskKeys
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.server.inbox import export_inbox
from portal.server.outbox import OutboxResult, import_outbox
from portal.server.web.services import services
from tests.harness.web import csrf_token

# A code shown (page_context.code_halves): two halves, the last group underlined.
_SHOWN = (
    r'>(<span class="code-half">[0-9 ]+</span> '
    r'<span class="code-half">[0-9 ]+<span class="code-last">[0-9]{4}</span></span>)'
)
CODE_ON_PAGE = re.compile("data-code" + _SHOWN)
NEW_CODE_ON_PAGE = re.compile("data-new-code" + _SHOWN)
TAG = re.compile(r"<[^>]+>")
ROTATION = re.compile(r'name="rotation" value="([0-9a-f]*)"')


def submit_report(
    client: FlaskClient,
    text: str,
    files: Sequence[tuple[bytes, str]] = (),
    **fields: str,
) -> str:
    """A report without JavaScript (with any files and other fields): its code."""
    resp = client.post(
        "/report",
        data={
            "csrf_token": csrf_token(client),
            "what_happened": text,
            **fields,
            "files": [(io.BytesIO(data), name) for data, name in files],
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert resp.status_code == 200
    match = CODE_ON_PAGE.search(resp.get_data(as_text=True))
    assert match
    return codes.normalise(TAG.sub("", match.group(1)))


def send_follow_up(client: FlaskClient, code: str, text: str) -> None:
    """Open the case without JavaScript and send one message in it."""
    assert open_case(client, code)[0] == 200
    resp = client.post(
        "/case/message",
        data={"csrf_token": csrf_token(client, "/case"), "message": text},
        follow_redirects=True,
    )
    assert resp.status_code == 200


def to_desk(app: Flask, store: DeskStore, keys: DeskKeys, tmp: Path) -> cases.ImportResult:
    bundle = tmp / "inbox.tar"
    with app.app_context():
        svc = services()
        export_inbox(svc.mailboxes, svc.organization, bundle)
    return cases.import_inbox(store, keys, bundle)


def desk_outbox(store: DeskStore, keys: DeskKeys, path: Path) -> Path:
    export_outbox(store, keys, path)
    return path


def to_portal(app: Flask, path: Path) -> OutboxResult:
    with app.app_context():
        svc = services()
        return import_outbox(svc.mailboxes, svc.organization, path, svc.config.transparency_min)


def open_case(client: FlaskClient, code: str) -> tuple[int, str]:
    """Open a case without JavaScript; the page it lands on (after the redirect)."""
    resp = client.post(
        "/case",
        data={"csrf_token": csrf_token(client, "/case"), "code": code},
        follow_redirects=True,
    )
    return resp.status_code, resp.get_data(as_text=True)


def new_code_and_rotation(page: str) -> tuple[str, str]:
    code = NEW_CODE_ON_PAGE.search(page)
    rotation = ROTATION.search(page)
    assert code and rotation
    return codes.normalise(TAG.sub("", code.group(1))), rotation.group(1)


def confirm_page(client: FlaskClient, rotation: str, group: str) -> tuple[int, str]:
    """Confirm without JavaScript; the page it lands on (after the redirect)."""
    resp = client.post(
        "/case/confirm",
        data={"csrf_token": csrf_token(client, "/case"), "rotation": rotation, "last_group": group},
        follow_redirects=True,
    )
    return resp.status_code, resp.get_data(as_text=True)


def confirm(client: FlaskClient, new_code: str, rotation: str, group: str) -> int:
    """Confirm a new code without JavaScript; the outcome as a status: 200 confirmed,
    400 the digits did not match, 409 a newer code replaced it, 403 the case closed."""
    resp = client.post(
        "/case/confirm",
        data={"csrf_token": csrf_token(client, "/case"), "rotation": rotation, "last_group": group},
        follow_redirects=True,
    )
    page = resp.get_data(as_text=True)
    if resp.status_code != 200:
        return resp.status_code
    if 'id="confirmed-notice"' in page:
        return 200
    if 'id="superseded"' in page or 'id="rotated-notice"' in page:
        return 409
    return 400 if 'id="confirm-error" hidden' not in page else 500
