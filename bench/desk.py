"""The desk at scale: import and decrypt 10,000 envelopes; and the portal's
export of an inbox of 10,000 envelopes plus 1 GiB of files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from portal.common.blobs import BlobStore
from portal.common.db import Database
from portal.desk import cases, keystore
from portal.desk.store import DeskStore
from portal.protocol.envelopes import case_id, open_envelope, seal
from portal.protocol.filecrypt import EncryptingWriter
from portal.protocol.organization import Organization
from portal.protocol.reports import plaintext
from portal.server.inbox import export_inbox
from portal.server.mailboxes import Mailboxes, attachment_blob, envelope_blob
from portal.server.models import Attachment, Envelope, Mailbox
from portal.server.schema import upgrade

ENVELOPES = 10_000
BLOB_MIB = 64


def fill_portal(folder: Path, org: Organization, envelopes: int, blob_gib: float) -> Mailboxes:
    """A portal database holding ``envelopes`` reports and ``blob_gib`` GiB of files.

    Bulk-inserted: this is the set-up, not what is measured.
    """
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'portal.sqlite'}"
    upgrade(url)
    db = Database(url)
    blobs = BlobStore(folder / "blobs")
    today = dt.date.today()
    mailboxes: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    file_count = int(blob_gib * 1024) // BLOB_MIB
    block = os.urandom(BLOB_MIB << 20)
    for n in range(envelopes):
        reporter = os.urandom(32)  # stands for a reporter's public key: it names the case
        mailbox_id, envelope_id = case_id(reporter), secrets.token_hex(16)
        described = []
        if n < file_count:  # a real encrypted file, described by its report
            blob_id = secrets.token_hex(16)
            path = blobs.path(attachment_blob(blob_id))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                writer = EncryptingWriter(out)
                writer.write(block)
                writer.finish()
            described.append(
                {
                    "upload": blob_id,
                    "name": f"file-{n}.bin",
                    "type": "application/octet-stream",
                    "size": len(block),
                    **writer.finish().entry(),
                    "metadata_removed": False,
                }
            )
            files.append(
                {
                    "id": blob_id,
                    "owner": None,
                    "size": writer.cipher_bytes,
                    "part_size": writer.cipher_bytes,
                    "parts": 1,
                    "received": 1,
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "mailbox_id": mailbox_id,
                    "created_on": today,
                }
            )
        body = plaintext(
            "report",
            "report",
            1,
            {"what_happened": "x" * 800},
            reply_pk=reporter,
            attachments=described,
        )
        env = seal("report", body, org.encrypt, "browser")
        path = blobs.path(envelope_blob(envelope_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(env.document)
        mailboxes.append(
            {
                "id": mailbox_id,
                "index": os.urandom(32),
                "wrapped_key": os.urandom(72),
                "kind": "report",
                "created_on": today,
                "active_on": today,
            }
        )
        rows.append(
            {
                "id": envelope_id,
                "mailbox_id": mailbox_id,
                "kind": "report",
                "sealed_by": "browser",
                "size": env.size,
                "sha256": env.sha256,
                "received_on": today,
                "seq": 1,
            }
        )
    with db.transaction() as s:
        s.execute(insert(Mailbox), mailboxes)
        s.execute(insert(Envelope), rows)
        if files:
            s.execute(insert(Attachment), files)
    return Mailboxes(db, blobs)


def run(folder: Path, org_home: Path, passphrase: str, blob_gib: float = 1.0) -> dict[str, float]:
    keys = keystore.unlock(org_home, passphrase)
    org = keys.organization
    out: dict[str, float] = {}
    small = fill_portal(folder / "portal-envelopes", org, ENVELOPES, 0)
    started = time.perf_counter()
    export_inbox(small, org, folder / "inbox-envelopes.tar")
    out["export_envelopes_s"] = time.perf_counter() - started

    store = DeskStore(folder / "desk")
    started = time.perf_counter()
    result = cases.import_inbox(store, keys, folder / "inbox-envelopes.tar")
    out["import_s"] = time.perf_counter() - started
    assert result.new == ENVELOPES
    started = time.perf_counter()
    opened = 0
    for row in store.envelopes():
        json.loads(open_envelope(store.blobs.read(f"envelopes/{row.sha256}"), keys.encrypt))
        opened += 1
    out["decrypt_s"] = time.perf_counter() - started
    assert opened == ENVELOPES

    big = fill_portal(folder / "portal-files", org, ENVELOPES, blob_gib)
    started = time.perf_counter()
    export_inbox(big, org, folder / "inbox-files.tar")
    out["export_files_s"] = time.perf_counter() - started
    out["export_files_mb"] = (folder / "inbox-files.tar").stat().st_size / 1e6
    # The desk decrypts and checks every file before keeping (and acknowledging) it.
    started = time.perf_counter()
    result = cases.import_inbox(DeskStore(folder / "desk-files"), keys, folder / "inbox-files.tar")
    out["import_files_s"] = time.perf_counter() - started
    assert result.files == int(blob_gib * 1024) // BLOB_MIB and result.damaged == 0
    return out


def report(r: dict[str, float]) -> list[str]:
    return [
        f"{'desk, ' + str(ENVELOPES) + ' envelopes':<44}{'seconds':>9}{'per s':>10}",
        f"{'export inbox (portal)':<44}{r['export_envelopes_s']:>9.1f}"
        f"{ENVELOPES / r['export_envelopes_s']:>10.0f}",
        f"{'import on the desk (checked, stored)':<44}{r['import_s']:>9.1f}"
        f"{ENVELOPES / r['import_s']:>10.0f}   target < 30 s: ratio {r['import_s'] / 30:.2f}",
        f"{'decrypt every one':<44}{r['decrypt_s']:>9.1f}{ENVELOPES / r['decrypt_s']:>10.0f}",
        f"{'export inbox: envelopes + files':<44}{r['export_files_s']:>9.1f}"
        f"{r['export_files_mb'] / r['export_files_s']:>10.0f} MB/s ({r['export_files_mb']:.0f} MB)",
        f"{'import them: every file decrypted, checked':<44}{r['import_files_s']:>9.1f}"
        f"{r['export_files_mb'] / r['import_files_s']:>10.0f} MB/s",
    ]
