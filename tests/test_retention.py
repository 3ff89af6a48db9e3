"""Retention: idle cases go once the desk has everything; stray files from crashes go."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.desk import cases, replies
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.server.config import Config
from portal.server.mailboxes import Mailboxes, envelope_blob
from portal.server.models import Envelope, Mailbox
from portal.server.web.services import services
from tests.harness.loop import desk_outbox, submit_report, to_desk, to_portal


def _later(app: Flask, days: int) -> None:
    services().mailboxes.today = lambda: dt.date.today() + dt.timedelta(days=days)  # type: ignore[method-assign]


def test_idle_cases_are_deleted_only_when_the_desk_has_everything(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, tmp_path: Path, config: Config
) -> None:
    submit_report(client, "carried to the desk")
    submit_report(client, "also carried")
    store = DeskStore(tmp_path / "desk")
    to_desk(app, store, desk_keys, tmp_path)
    for case in cases.list_cases(store):
        replies.reply(store, desk_keys, case.case, "closed", "done")
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o.tar"))
    submit_report(client, "not yet carried")
    with app.app_context():
        _later(app, 100)
        assert services().mailboxes.purge_idle(365) == 0
        _later(app, 400)
        assert services().mailboxes.purge_idle(365) == 2
        with services().db.reading() as s:
            assert len(list(s.scalars(select(Mailbox)))) == 1  # the unacknowledged one stays
            assert [d is not None for d in s.scalars(select(Envelope.document))] == [True]


def test_stray_files_from_interrupted_writes_are_swept(
    app: Flask, client: FlaskClient, config: Config
) -> None:
    submit_report(client, "kept")
    with app.app_context():
        kept = _as_before_0012(services().mailboxes)
    folder = kept.parent
    stray = folder / ("ab" * 16)
    tmp = folder / ".tmp-crash.part"
    fresh = folder / ("cd" * 16)
    for path in (stray, tmp, fresh):
        path.write_bytes(b"ciphertext")
    old = time.time() - 7200
    for path in (stray, tmp, kept):
        os.utime(path, (old, old))
    with app.app_context():
        assert services().mailboxes.sweep_orphans() == 2
    assert kept.exists() and fresh.exists()  # a blob mid-transaction is too new to judge
    assert not stray.exists() and not tmp.exists()


def _as_before_0012(mailboxes: Mailboxes) -> Path:
    """Move the one envelope's ciphertext out of its row into the blob store, where
    envelopes stored before migration 0012 keep theirs; return the blob's path."""
    with mailboxes.db.transaction() as s:
        row = s.scalars(select(Envelope)).one()
        assert row.document is not None
        mailboxes.blobs.put(envelope_blob(row.id), row.document)
        row.document = None
        envelope_id = row.id
    return mailboxes.blobs.path(envelope_blob(envelope_id))


def test_an_envelope_stored_before_0012_is_read_from_the_blob_store(
    app: Flask, client: FlaskClient
) -> None:
    submit_report(client, "stored the old way")
    with app.app_context():
        mailboxes = services().mailboxes
        path = _as_before_0012(mailboxes)
        with mailboxes.db.reading() as s:
            envelope_id = s.scalars(select(Envelope.id)).one()
        assert mailboxes.document(envelope_id) == path.read_bytes()
