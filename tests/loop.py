"""Helpers that move work around the loop: portal → inbox → desk → outbox → portal."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from portal import codes
from portal.desk import cases
from portal.desk.keystore import DeskKeys
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.inbox import export_inbox
from portal.outbox import OutboxResult, import_outbox
from portal.web.services import services
from tests.conftest import csrf_token

CODE_ON_PAGE = re.compile(r"data-code>([0-9 ]{29})<")
NEW_CODE_ON_PAGE = re.compile(r"data-new-code>([0-9 ]{29})<")
ROTATION = re.compile(r'name="rotation" value="([0-9a-f]*)"')


def submit_report(client: FlaskClient, text: str) -> str:
    resp = client.post("/report", data={"csrf_token": csrf_token(client), "what_happened": text})
    assert resp.status_code == 200
    match = CODE_ON_PAGE.search(resp.get_data(as_text=True))
    assert match
    return codes.normalise(match.group(1))


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
        return import_outbox(svc.mailboxes, svc.organization, path)


def open_case(client: FlaskClient, code: str) -> tuple[int, str]:
    resp = client.post("/case", data={"csrf_token": csrf_token(client, "/case"), "code": code})
    return resp.status_code, resp.get_data(as_text=True)


def new_code_and_rotation(page: str) -> tuple[str, str]:
    code = NEW_CODE_ON_PAGE.search(page)
    rotation = ROTATION.search(page)
    assert code and rotation
    return codes.normalise(code.group(1)), rotation.group(1)


def confirm(client: FlaskClient, new_code: str, rotation: str, group: str) -> int:
    resp = client.post(
        "/case/confirm",
        data={
            "csrf_token": csrf_token(client, "/case"),
            "new_code": codes.format_code(new_code),
            "rotation": rotation,
            "last_group": group,
        },
    )
    return resp.status_code
