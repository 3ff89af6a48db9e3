"""Insiders with the relay's access to bundles, attacking the desk and the portal
with real bundles: tampered evidence, relabelled and injected items, forged
counters, jammed outboxes, a rewritten custody log."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from nacl.public import PrivateKey, SealedBox
from sqlalchemy import select

from portal.cli import main
from portal.desk import cases, replies
from portal.desk.custody import CustodyLog, entry_hash
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.bundles import Item, Manifest, open_bundle, write_bundle
from portal.protocol.encoding import b64encode
from portal.protocol.envelopes import case_id, seal
from portal.protocol.filecrypt import CHUNK
from portal.protocol.organization import Organization
from portal.protocol.replies import open_reply
from portal.protocol.reports import plaintext, seal_follow_up
from portal.server.inbox import export_inbox
from portal.server.mailboxes import attachment_blob
from portal.server.models import Attachment, Envelope, Mailbox, RefusedItem
from portal.server.web.services import services
from tests.harness.loop import desk_outbox, open_case, submit_report, to_desk, to_portal
from tests.harness.sealing import browser_style_request
from tests.harness.web import PASSPHRASE, api_post, csrf_token


@pytest.fixture
def store(home: Path) -> DeskStore:
    return DeskStore(home)


def _inbox(app: Flask, path: Path) -> Path:
    with app.app_context():
        export_inbox(services().mailboxes, services().organization, path)
    return path


def _rewrite(
    src: Path,
    dst: Path,
    change: Callable[[Item, bytes], tuple[Item, bytes] | None] = lambda i, d: (i, d),
    extra: dict[str, Any] | None = None,
    added: list[tuple[Item, bytes]] = (),  # type: ignore[assignment]
) -> Path:
    """A copy of an inbox with items changed, dropped or added and the manifest fixed
    up to match: what anyone carrying the (unsigned) bundle can do."""
    with open_bundle(src, "inbox") as bundle:
        kept: list[tuple[Item, bytes]] = []
        for item in bundle.manifest.items:
            changed = change(item, bundle.read(item))
            if changed is not None:
                new_item, data = changed
                kept.append(
                    (
                        Item(
                            id=new_item.id,
                            kind=new_item.kind,
                            name=new_item.name,
                            size=len(data),
                            sha256=hashlib.sha256(data).hexdigest(),
                            meta=new_item.meta,
                        ),
                        data,
                    )
                )
        kept += [
            (
                Item(i.id, i.kind, i.name, len(d), hashlib.sha256(d).hexdigest(), i.meta),
                d,
            )
            for i, d in added
        ]
        manifest = Manifest(
            type="inbox",
            org=bundle.manifest.org,
            created=bundle.manifest.created,
            items=tuple(i for i, _ in kept),
            extra={**bundle.manifest.extra, **(extra or {})},
        )
    contents = {i.name: d for i, d in kept}
    write_bundle(dst, manifest, lambda i: io.BytesIO(contents[i.name]))
    return dst


def _outbox_items(path: Path) -> dict[str, Any]:
    with open_bundle(path, "outbox") as bundle:
        acks = [json.loads(bundle.read(i)) for i in bundle.manifest.items if i.kind == "ack"] or [
            {"envelopes": [], "discard": []}
        ]
        return {
            "acked": {a["id"] for a in acks[0]["envelopes"]},
            "discard": {d["id"] for d in acks[0]["discard"]},
            "replies": [i for i in bundle.manifest.items if i.kind == "reply"],
            "extra": bundle.manifest.extra,
        }


def _no_js_report_with_file(client: FlaskClient, data: bytes) -> None:
    resp = client.post(
        "/report",
        data={
            "csrf_token": csrf_token(client),
            "what_happened": "a report with evidence",
            "files": [(io.BytesIO(data), "evidence.bin")],
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert resp.status_code == 200


# --- 2: the desk acknowledges only what it checked ---------------------------------


def test_evidence_altered_in_transit_is_never_acknowledged_or_deleted(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    """The attack: replace a file's bytes in the inbox and fix up its manifest
    entry; the review saw the desk acknowledge it and the portal delete the original."""
    evidence = b"the only good copy " * (CHUNK // 8)
    _no_js_report_with_file(client, evidence)
    inbox = _inbox(app, tmp_path / "inbox.tar")

    def swap(item: Item, data: bytes) -> tuple[Item, bytes]:
        return (item, bytes(len(data))) if item.kind == "blob" else (item, data)

    result = cases.import_inbox(store, desk_keys, _rewrite(inbox, tmp_path / "evil.tar", swap))
    assert (result.new, result.files, result.damaged) == (1, 0, 1)
    held = store.damaged()
    assert [d.kind for d in held] == ["blob"] and "does not decrypt" in held[0].reason
    outbox = desk_outbox(store, desk_keys, tmp_path / "outbox.tar")
    acked = _outbox_items(outbox)["acked"]
    blob_id = held[0].id
    assert blob_id not in acked and len(acked) == 1  # the report's envelope only
    to_portal(app, outbox)
    with app.app_context():
        svc = services()
        svc.mailboxes.purge_acknowledged(grace_days=-1)  # even with no grace at all
        assert svc.mailboxes.blobs.path(attachment_blob(blob_id)).exists()
        assert svc.mailboxes.blobs.read(attachment_blob(blob_id)) != bytes(len(evidence))
    # The portal sends it again; the good copy verifies, is kept and acknowledged.
    result = to_desk(app, store, desk_keys, tmp_path)
    assert (result.files, result.damaged) == (1, 0) and store.damaged() == []
    shown = cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    assert [f["state"] for f in shown.items[0].files] == ["verified"]
    assert blob_id in _outbox_items(desk_outbox(store, desk_keys, tmp_path / "o2.tar"))["acked"]


def test_a_tampered_envelope_is_kept_aside_and_sent_again(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    submit_report(client, "MARKER-one")
    inbox = _inbox(app, tmp_path / "inbox.tar")

    def flip(item: Item, data: bytes) -> tuple[Item, bytes]:
        if item.kind != "envelope":
            return item, data
        doc = json.loads(data)
        body = bytearray(doc["body"].encode())
        body[40] = ord("A") if body[40] != ord("A") else ord("B")
        doc["body"] = body.decode()
        return item, json.dumps(doc).encode()

    result = cases.import_inbox(store, desk_keys, _rewrite(inbox, tmp_path / "evil.tar", flip))
    assert (result.new, result.damaged) == (0, 1)
    assert cases.list_cases(store) == []
    assert _outbox_items(desk_outbox(store, desk_keys, tmp_path / "o.tar"))["acked"] == set()
    assert to_desk(app, store, desk_keys, tmp_path).new == 1  # the good copy, next time
    assert store.damaged() == []


# --- 3: which case an envelope belongs to is authenticated --------------------------


def _real_case(
    app: Flask, client: FlaskClient, store: DeskStore, keys: DeskKeys, org: Organization, tmp: Path
) -> tuple[str, PrivateKey]:
    """A browser-style report whose reporter key the test holds."""
    code, request = browser_style_request(org, "MARKER-real report")
    assert api_post(client, "/api/reports", request).status_code == 201
    to_desk(app, store, keys, tmp)
    derived = codes.derive(code, org.code_salt, org.kdf)
    with app.app_context(), services().db.reading() as s:
        box = s.scalars(select(Mailbox).where(Mailbox.index == derived.index)).one()
    from nacl.secret import SecretBox

    reporter = PrivateKey(SecretBox(derived.wrap).decrypt(box.wrapped_key))
    assert case_id(bytes(reporter.public_key)) == box.id
    return box.id, reporter


def _injected(kind: str, data: bytes, case: str) -> tuple[Item, bytes]:
    item_id = hashlib.sha256(data).hexdigest()[:32]
    return (
        Item(
            item_id,
            "envelope",
            f"envelopes/{item_id}.json",
            0,
            "",
            {"mailbox": case, "day": "2026-01-01", "seq": 9},
        ),
        data,
    )


def test_an_injected_report_cannot_steal_a_reply(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    """The attack of the review: a "report" carrying the attacker's reply key, filed
    under a real case, received the desk's confidential reply."""
    case, reporter = _real_case(app, client, store, desk_keys, org, tmp_path)
    attacker = PrivateKey.generate()
    fake = plaintext(
        "report", "report", 1, {"what_happened": "me too"}, reply_pk=bytes(attacker.public_key)
    )
    injected = seal("report", fake, org.encrypt, "browser").document
    inbox = _rewrite(
        _inbox(app, tmp_path / "i.tar"),
        tmp_path / "evil.tar",
        added=[_injected("report", injected, case)],
    )
    result = cases.import_inbox(store, desk_keys, inbox)
    assert result.damaged == 1
    assert "another case" in store.damaged()[0].reason
    replies.reply(store, desk_keys, case, "in_review", "CONFIDENTIAL for the reporter")
    sealed = store.replies(case)[0].for_reporter
    with pytest.raises(Exception):  # noqa: B017 - any failure: the attacker cannot open it
        SealedBox(attacker).decrypt(sealed)
    item = open_reply(sealed, reporter, org.verify_key, case)
    assert item.text == "CONFIDENTIAL for the reporter"


def test_injected_and_relabelled_follow_ups_are_refused(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    case, reporter = _real_case(app, client, store, desk_keys, org, tmp_path)
    _other, other_reporter = _real_case(app, client, store, desk_keys, org, tmp_path)
    forged = seal_follow_up(org, "message", "injected", PrivateKey.generate()).document
    anonymous = seal(
        "message",
        plaintext("message", "message", 1, {"message": "x"}),
        org.encrypt,
        "server",
        sender=PrivateKey.generate(),
    ).document
    genuine_for_other = seal_follow_up(org, "message", "belongs to the other", other_reporter)
    second_report = seal(
        "report",
        plaintext("report", "report", 1, {"w": "again"}, reply_pk=bytes(reporter.public_key)),
        org.encrypt,
        "browser",
    ).document
    inbox = _rewrite(
        _inbox(app, tmp_path / "i.tar"),
        tmp_path / "evil.tar",
        added=[
            _injected("message", forged, case),
            _injected("message", anonymous, case),
            _injected("message", genuine_for_other.document, case),  # relabelled
            _injected("report", second_report, case),
        ],
    )
    result = cases.import_inbox(store, desk_keys, inbox)
    assert (result.new, result.damaged) == (0, 4)
    reasons = sorted(d.reason for d in store.damaged(case))
    assert sum("not made by this case's reporter" in r for r in reasons) == 3
    assert sum("second report" in r for r in reasons) == 1
    shown = cases.show_case(store, desk_keys, case)
    assert [i.kind for i in shown.items if not i.damaged] == ["report"]
    assert len([i for i in shown.items if i.damaged]) == 4
    assert all(i.content == {} for i in shown.items if i.damaged)
    # A genuine follow-up, sealed by the reporter's own key, is accepted.
    genuine = seal_follow_up(org, "message", "MARKER-genuine", reporter)
    inbox = _rewrite(
        _inbox(app, tmp_path / "i2.tar"),
        tmp_path / "good.tar",
        added=[_injected("message", genuine.document, case)],
    )
    assert cases.import_inbox(store, desk_keys, inbox).new == 1


# --- 6: one undecryptable envelope does not hide a case ----------------------------


def test_a_case_with_a_damaged_stored_item_still_shows(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    home: Path,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    case, reporter = _real_case(app, client, store, desk_keys, org, tmp_path)
    genuine = seal_follow_up(org, "message", "MARKER-later", reporter)
    inbox = _rewrite(
        _inbox(app, tmp_path / "i.tar"),
        tmp_path / "g.tar",
        added=[_injected("message", genuine.document, case)],
    )
    cases.import_inbox(store, desk_keys, inbox)
    report_row = next(r for r in store.envelopes(case) if r.kind == "report")
    store.blobs.path(f"envelopes/{report_row.sha256}").write_bytes(b'{"kind":"report"}')
    shown = cases.show_case(store, desk_keys, case)
    damaged = {i.kind: bool(i.damaged) for i in shown.items}
    assert damaged == {"report": True, "message": False}
    runner = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE})
    out = runner.invoke(main, ["desk", "show", case, "--home", str(home)])
    assert out.exit_code == 0 and "MARKER-later" in out.output and "damaged" in out.output.lower()


# --- 7: a bad item of an outbox is refused alone -----------------------------------


def test_an_invitation_whose_index_was_taken_in_advance_is_refused_alone(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    """The attack: read an invitation's index from an outbox and register it first
    through /api/reports; the review saw every later outbox fail."""
    case, _ = _real_case(app, client, store, desk_keys, org, tmp_path)
    invitation = replies.invite(store, desk_keys, "questions for a witness")
    replies.reply(store, desk_keys, case, "in_review", "we read it")
    outbox = desk_outbox(store, desk_keys, tmp_path / "o1.tar")
    with open_bundle(outbox, "outbox") as bundle:
        item = next(i for i in bundle.manifest.items if i.kind == "invitation")
        taken = json.loads(bundle.read(item))["index"]
    _, squatter = browser_style_request(org, "squatting")
    squatter["mailbox"]["index"] = taken
    assert api_post(client, "/api/reports", squatter).status_code == 201
    result = to_portal(app, outbox)
    assert result.replies == 1 and result.invitations == 0
    assert any("clashes" in r and invitation.mailbox_id in r for r in result.refused)
    # The desk hears of it, and the channel keeps working.
    imported = to_desk(app, store, desk_keys, tmp_path)
    assert any("refused" in note for note in imported.notes)
    with store.db.reading() as s:
        from portal.desk.store import OutboxRefusal

        # The invitation, and its questions (for a case that could not be made).
        refused = {(r.kind, r.id) for r in s.scalars(select(OutboxRefusal))}
        assert {k for k, _ in refused} == {"invitation", "reply"}
        assert ("invitation", invitation.mailbox_id) in refused
    replies.reply(store, desk_keys, case, None, "and another")
    assert to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o2.tar")).replies == 1
    with app.app_context(), services().db.reading() as s:
        assert list(s.scalars(select(RefusedItem))) == []  # the desk saw it: cleared


def test_a_malformed_case_label_in_an_inbox_jams_nothing(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    submit_report(client, "MARKER-fine")
    submit_report(client, "MARKER-mislabelled")
    inbox = _inbox(app, tmp_path / "i.tar")
    first = True

    def mislabel(item: Item, data: bytes) -> tuple[Item, bytes]:
        nonlocal first
        if first:
            first = False
            return Item(
                item.id,
                item.kind,
                item.name,
                item.size,
                item.sha256,
                {**item.meta, "mailbox": "ZZ<script>" + "x" * 200},
            ), data
        return item, data

    result = cases.import_inbox(store, desk_keys, _rewrite(inbox, tmp_path / "e.tar", mislabel))
    assert (result.new, result.damaged) == (1, 1)
    case = cases.list_cases(store)[0].case
    replies.reply(store, desk_keys, case, "in_review", "ok")
    for n in (1, 2):
        outcome = to_portal(app, desk_outbox(store, desk_keys, tmp_path / f"o{n}.tar"))
        assert outcome.refused == ()
        to_desk(app, store, desk_keys, tmp_path)
    assert len(cases.list_cases(store)) == 2  # the good copy arrived after all


# --- 8: the inbox's counters are bounded and cannot hide a reply -------------------


@pytest.mark.parametrize("claim", [2**70, -1, "7", True, "lie"])
def test_forged_outbox_numbers_cannot_hide_a_reply(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    tmp_path: Path,
    claim: object,
) -> None:
    submit_report(client, "MARKER-counter")
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    replies.reply(store, desk_keys, case, "in_review", "the reply that must arrive")
    lost = desk_outbox(store, desk_keys, tmp_path / "lost.tar")  # the relay drops it
    assert _outbox_items(lost)["extra"]["seq"] == 1
    lie = claim == "lie"
    claimed = 1 if lie else claim  # the lie: "outbox 1 was applied" (it was not)
    forged = _rewrite(
        _inbox(app, tmp_path / "i.tar"), tmp_path / "f.tar", extra={"outbox_seq": claimed}
    )
    before = store.custody.verify()
    cases.import_inbox(store, desk_keys, forged)  # no OverflowError, no partial commit
    assert store.custody.verify().ok and store.custody.verify().entries == before.entries + 1
    nxt = desk_outbox(store, desk_keys, tmp_path / "next.tar")
    if lie:
        # The desk believed the lie and left the reply out; the portal refuses the
        # outbox, since it was made on the word that outbox 1 arrived.
        assert _outbox_items(nxt)["replies"] == []
        from portal.protocol.bundles import BundleError

        with pytest.raises(BundleError, match="missing outbox"):
            to_portal(app, nxt)
        # The next honest inbox says the truth; the desk sends the reply again.
        to_desk(app, store, desk_keys, tmp_path)
        nxt = desk_outbox(store, desk_keys, tmp_path / "again.tar")
    assert len(_outbox_items(nxt)["replies"]) == 1
    assert to_portal(app, nxt).replies == 1


def test_a_desk_restored_from_backup_still_catches_up(
    app: Flask, client: FlaskClient, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    first = DeskStore(tmp_path / "first")
    submit_report(client, "report")
    to_desk(app, first, desk_keys, tmp_path)
    for n in range(3):
        to_portal(app, desk_outbox(first, desk_keys, tmp_path / f"o{n}.tar"))
    restored = DeskStore(tmp_path / "restored")
    result = to_desk(app, restored, desk_keys, tmp_path)
    assert any("restored from a backup" in n for n in result.notes)
    replies.invite(restored, desk_keys, "questions")
    assert to_portal(app, desk_outbox(restored, desk_keys, tmp_path / "r.tar")).seq == 4


# --- 12: the custody log is anchored -----------------------------------------------


def _rewrite_log(log: CustodyLog, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Delete entries and recompute the whole chain, as a careful forger would."""
    prev, lines = "0" * 64, []
    for n, entry in enumerate((e for e in log.entries() if keep(e)), start=1):
        entry = {**entry, "n": n, "prev": prev}
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        lines.append(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
    log.path.write_text("".join(lines))


@pytest.mark.parametrize("cut", ["rewrite", "truncate"])
def test_a_rewritten_custody_log_is_caught_by_the_anchored_head(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    home: Path,
    desk_keys: DeskKeys,
    tmp_path: Path,
    cut: str,
) -> None:
    submit_report(client, "MARKER-custody")
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    cases.show_case(store, desk_keys, case)
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o.tar"))
    runner = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE})
    assert runner.invoke(main, ["desk", "verify-log", "--home", str(home)]).exit_code == 0
    if cut == "rewrite":  # the case was viewed by "someone else": the record is redone
        log = store.custody
        forged = [
            {**e, "details": {**e["details"], "case": "0" * 32}} if e["event"] == "view" else e
            for e in log.entries()
        ]
        log.path.write_text("".join(json.dumps(e) + "\n" for e in forged))
        _rewrite_log(log, lambda e: True)
    else:
        _rewrite_log(store.custody, lambda e: e["event"] == "import")
    assert store.custody.verify().ok  # the chain alone checks out
    # Even a forger who also empties the desk's own copy of the checkpoints is
    # caught: the portal sends its copy back with every inbox, and prints it too.
    with store.db.transaction() as s:
        from portal.desk.store import Checkpoint

        s.query(Checkpoint).delete()
    with app.app_context():
        from portal.server.outbox import portal_checkpoints

        printed = tmp_path / "checkpoints.json"
        printed.write_text(json.dumps(portal_checkpoints(services().mailboxes)))
    out = runner.invoke(
        main, ["desk", "verify-log", "--home", str(home), "--checkpoints", str(printed)]
    )
    assert out.exit_code != 0
    assert ("rewritten" if cut == "rewrite" else "cut short") in out.output
    to_desk(app, store, desk_keys, tmp_path)  # the checkpoint comes back in the inbox
    assert runner.invoke(main, ["desk", "verify-log", "--home", str(home)]).exit_code != 0


def test_a_forged_checkpoint_in_an_inbox_is_not_taken(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    submit_report(client, "x")
    forged = {"n": 99, "hash": "f" * 64, "sig": b64encode(bytes(64)), "outbox": 1}
    inbox = _rewrite(
        _inbox(app, tmp_path / "i.tar"), tmp_path / "f.tar", extra={"checkpoint": forged}
    )
    result = cases.import_inbox(store, desk_keys, inbox)
    assert any("did not sign" in n for n in result.notes)
    assert store.checkpoints() == []


# --- flood junk: staff can discard what will never verify --------------------------


def test_junk_is_kept_aside_until_staff_discard_it(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    home: Path,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    for _ in range(3):
        _, junk = browser_style_request(org, "x")
        junk["envelope"]["body"] = b64encode(bytes(1024 + 40))  # the right shape, no content
        assert api_post(client, "/api/reports", junk).status_code == 201
    assert to_desk(app, store, desk_keys, tmp_path).damaged == 3
    runner = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE})
    assert runner.invoke(main, ["desk", "discard", "--all", "--home", str(home)]).exit_code == 0
    outbox = desk_outbox(store, desk_keys, tmp_path / "o.tar")
    assert len(_outbox_items(outbox)["discard"]) == 3
    assert to_portal(app, outbox).acked == 3
    with app.app_context(), services().db.reading() as s:
        assert all(e.acked_on is not None for e in s.scalars(select(Envelope)))
    assert to_desk(app, store, desk_keys, tmp_path).damaged == 0
    assert [e["event"] for e in store.custody.entries()].count("discard") == 1


# --- acks name the bytes: a swapped item cannot get the real one deleted ------------


def test_an_item_swapped_under_a_victims_id_gets_nothing_deleted(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    """The attack of the second review: put a report of one's own (and a file of
    one's own) under the ids of a victim's report and file; the desk verifies the
    attacker's items and acknowledges the ids; the portal deleted the victim's."""
    evidence = b"the victim's evidence " * 5000
    _no_js_report_with_file(client, evidence)
    inbox = _inbox(app, tmp_path / "i.tar")
    with open_bundle(inbox, "inbox") as bundle:
        victim_env = next(i for i in bundle.manifest.items if i.kind == "envelope")
        victim_blob = next(i for i in bundle.manifest.items if i.kind == "blob")
    attacker = PrivateKey.generate()
    out = io.BytesIO()
    from portal.protocol.filecrypt import EncryptingWriter

    writer = EncryptingWriter(out)
    writer.write(b"the attacker's bytes")
    writer.finish()
    entry = {
        "upload": victim_blob.id,
        "name": "x",
        "type": "",
        "size": writer.size,
        **writer.finish().entry(),
        "metadata_removed": False,
    }
    own = plaintext(
        "report",
        "report",
        1,
        {"what_happened": "mine"},
        reply_pk=bytes(attacker.public_key),
        attachments=[entry],
    )
    document = seal("report", own, org.encrypt, "browser").document
    attacker_case = case_id(bytes(attacker.public_key))

    def swap(item: Item, data: bytes) -> tuple[Item, bytes]:
        if item.id == victim_env.id:
            return Item(
                item.id, item.kind, item.name, 0, "", {**item.meta, "mailbox": attacker_case}
            ), document
        if item.id == victim_blob.id:
            return Item(
                item.id, item.kind, item.name, 0, "", {**item.meta, "mailbox": attacker_case}
            ), out.getvalue()
        return item, data

    result = cases.import_inbox(store, desk_keys, _rewrite(inbox, tmp_path / "swap.tar", swap))
    assert (result.new, result.files) == (1, 1)  # the attacker's own case, well formed
    outbox = desk_outbox(store, desk_keys, tmp_path / "o.tar")
    assert to_portal(app, outbox).acked == 0  # nothing the portal holds was acknowledged
    with app.app_context():
        svc = services()
        svc.mailboxes.purge_acknowledged(grace_days=-1)
        assert svc.mailboxes.blobs.path(attachment_blob(victim_blob.id)).exists()
        assert svc.mailboxes.document(victim_env.id)
    # The real items keep coming, and the desk keeps them in the victim's own case.
    result = to_desk(app, store, desk_keys, tmp_path)
    assert (result.new, result.files, result.damaged) == (1, 1, 0)
    victim_case = next(c.case for c in cases.list_cases(store) if c.case != attacker_case)
    shown = cases.show_case(store, desk_keys, victim_case)
    assert [f["state"] for f in shown.items[0].files] == ["verified"]
    f = next(iter(shown.items[0].files))
    assert f["sha256"] == hashlib.sha256(evidence).hexdigest()
    assert to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o2.tar")).acked == 2


# --- the channel cannot be jammed by a flood ---------------------------------------


def test_an_inbox_is_bounded_and_cases_take_turns(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    """The attack of the second review: pile up follow-ups until the inbox manifest
    is too large to write, and nothing reaches the desk any more."""
    codes_ = [submit_report(client, f"MARKER-{n}") for n in range(3)]
    flooder = app.test_client()
    status, _ = open_case(flooder, codes_[0])
    assert status == 200
    for n in range(8):  # one case floods...
        resp = flooder.post(
            "/case/message",
            data={"csrf_token": csrf_token(flooder, "/case"), "message": f"flood {n}"},
        )
        assert resp.status_code == 303  # sent; the page it goes back to shows the case
    with app.app_context():
        svc = services()
        manifest = export_inbox(svc.mailboxes, svc.organization, tmp_path / "i.tar", limit=4)
    carried = [i for i in manifest.items if i.kind != "questionnaire"]  # those ride along
    assert manifest.extra["more"] is True and len(carried) == 4
    # ...and still every case's report is in the first, small inbox.
    assert len({i.meta["mailbox"] for i in carried}) == 3
    result = cases.import_inbox(store, desk_keys, tmp_path / "i.tar")
    assert result.new == 4 and any("more items waiting" in n for n in result.notes)


def test_one_case_cannot_pile_up_follow_ups_without_end(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    app.extensions["portal"].mailboxes.pending_per_case = 3
    code = submit_report(client, "report")
    assert open_case(client, code)[0] == 200
    sent = []
    for n in range(4):
        resp = client.post(
            "/case/message", data={"csrf_token": csrf_token(client, "/case"), "message": f"m{n}"}
        )
        sent.append(resp.status_code)
    assert sent == [303, 303, 429, 429]  # the report and two messages wait: the case is full
    assert "many messages waiting" in resp.get_data(as_text=True)
    assert "m3" in resp.get_data(as_text=True)  # the words are given back


def test_a_no_js_message_form_sends_once(app: Flask, client: FlaskClient) -> None:
    code = submit_report(client, "report")
    assert open_case(client, code)[0] == 200
    token = csrf_token(client, "/case")
    first = client.post(
        "/case/message",
        data={"csrf_token": token, "message": "once"},
        follow_redirects=True,
    )
    again = client.post(
        "/case/message",
        data={"csrf_token": token, "message": "once"},
        follow_redirects=True,
    )
    assert first.status_code == 200 and again.status_code == 400
    with app.app_context(), services().db.reading() as s:
        assert s.query(Envelope).count() == 2  # the report and one message


@pytest.mark.parametrize(
    "hostile",
    ["integer id", "list kind", "nested envelope", "fields a list", "huge envelope"],
)
def test_hostile_inboxes_neither_crash_nor_exhaust_the_desk(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
    hostile: str,
) -> None:
    """The second review crashed `desk import` with odd manifest types and a deeply
    nested envelope, and `desk show` with a report whose fields were a list."""
    from portal.protocol.bundles import BundleError

    submit_report(client, "MARKER-still-fine")
    inbox = _inbox(app, tmp_path / "i.tar")
    if hostile in ("integer id", "list kind"):
        with open_bundle(inbox, "inbox") as bundle:
            doc = json.loads(bundle.manifest_bytes)
            contents = {i.name: bundle.read(i) for i in bundle.manifest.items}
        doc["items"][0]["id" if hostile == "integer id" else "kind"] = (
            7 if hostile == "integer id" else ["envelope"]
        )
        raw = json.dumps(doc).encode()
        import tarfile

        with tarfile.open(tmp_path / "evil.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in [("manifest.json", raw), *contents.items()]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        with pytest.raises(BundleError):
            cases.import_inbox(store, desk_keys, tmp_path / "evil.tar")
        assert store.damaged() == [] and cases.list_cases(store) == []
        return
    if hostile == "nested envelope":
        document = b'{"kind":"report","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    elif hostile == "huge envelope":
        document = b'{"kind":"report","pad":"' + b"x" * (70 * 1024 * 1024) + b'"}'
    else:
        reporter = PrivateKey.generate()
        body = json.dumps(
            {
                "kind": "report",
                "form": "report",
                "form_version": 1,
                "fields": ["a", "b"],
                "attachments": [],
                "reply_pk": b64encode(bytes(reporter.public_key)),
            }
        ).encode()
        document = seal("report", body, org.encrypt, "browser").document
        case = case_id(bytes(reporter.public_key))
    label = case if hostile == "fields a list" else "0" * 32
    evil = _rewrite(inbox, tmp_path / "evil.tar", added=[_injected("report", document, label)])
    result = cases.import_inbox(store, desk_keys, evil)
    assert (result.new, result.damaged) == (1, 1)
    for row in cases.list_cases(store):
        cases.show_case(store, desk_keys, row.case)  # nothing crashes


def test_a_wiped_log_on_a_desk_that_exported_does_not_pass(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    home: Path,
    desk_keys: DeskKeys,
    tmp_path: Path,
) -> None:
    """The second review wiped the log and the desk's checkpoints: verify-log said
    "intact: 0 entries"."""
    from portal.desk.store import Checkpoint

    submit_report(client, "x")
    to_desk(app, store, desk_keys, tmp_path)
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o.tar"))
    store.custody.path.write_text("")
    with store.db.transaction() as s:
        s.query(Checkpoint).delete()
    runner = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE})
    out = runner.invoke(main, ["desk", "verify-log", "--home", str(home)])
    assert out.exit_code != 0 and "cannot be checked" in out.output


def test_a_field_name_cannot_pass_for_the_desks_own_lines(
    app: Flask,
    client: FlaskClient,
    home: Path,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    reporter = PrivateKey.generate()
    fake_line = "-- our reply 1 of 2026-01-01 · status set to closed (delivered)"
    body = plaintext(
        "report",
        "report",
        1,
        {"what_happened": "x", fake_line: "y"},
        reply_pk=bytes(reporter.public_key),
    )
    document = seal("report", body, org.encrypt, "browser").document
    case = case_id(bytes(reporter.public_key))
    inbox = _rewrite(
        _inbox(app, tmp_path / "i.tar"),
        tmp_path / "e.tar",
        added=[_injected("report", document, case)],
    )
    cases.import_inbox(store, desk_keys, inbox)
    out = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE}).invoke(
        main, ["desk", "show", case, "--home", str(home)]
    )
    assert out.exit_code == 0
    assert "What happened?:" in out.output
    assert f'Field "{fake_line}":' in out.output
    assert not any(line.startswith("-- our reply") for line in out.output.splitlines())


# --- the second review's second round ----------------------------------------------


def test_a_part_raced_against_itself_cannot_corrupt_a_claimed_file(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    """Two PUTs of the last part at once, a report claiming the file in between: the
    review got a stored hash that no longer matched the file, and every later inbox
    was refused whole."""
    import threading

    from portal.protocol.filecrypt import EncryptingWriter

    out = io.BytesIO()
    writer = EncryptingWriter(out)
    writer.write(b"evidence " * 1000)
    writer.finish()
    blob = out.getvalue()
    part = 4096
    made = api_post(client, "/api/uploads", {"size": len(blob), "part_size": part}).get_json()
    upload, last = made["upload"], made["parts"] - 1
    headers = {"X-CSRFToken": csrf_token(client), "Content-Type": "application/octet-stream"}
    for n in range(last):
        client.put(
            f"/api/uploads/{upload}/parts/{n}",
            data=blob[n * part : (n + 1) * part],
            headers=headers,
        )
    tail = blob[last * part :]
    release = threading.Event()

    class Slow(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.sent = data, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent >= 10:
                release.wait(10)
            piece = self.data[self.sent : self.sent + min(len(buffer), 10)]
            buffer[: len(piece)] = piece
            self.sent += len(piece)
            return len(piece)

    with app.app_context():
        uploads = services().uploads
        with services().db.reading() as s:
            owner = s.scalar(select(Attachment.owner).where(Attachment.id == upload))
    assert owner is not None
    results: list[int] = []

    def put() -> None:
        with app.app_context():
            stream = io.BufferedReader(Slow(tail))
            results.append(uploads.write_part(upload, owner, last, stream, len(tail)))

    first = threading.Thread(target=put)
    first.start()
    import time as _time

    _time.sleep(0.3)  # the first holds the file's lock, mid-part
    second = threading.Thread(target=put)
    second.start()
    _time.sleep(0.3)  # the second passed its first checks and waits for the lock
    release.set()
    first.join(10)
    second.join(10)
    assert results == [last + 1, last + 1]  # the late copy saw the part was in
    entry = {
        "upload": upload,
        "name": "e",
        "type": "",
        "size": writer.size,
        **writer.finish().entry(),
        "metadata_removed": False,
    }
    _, body = browser_style_request(org, "report with a raced file", attachments=[entry])
    body["attachments"] = [upload]
    assert api_post(client, "/api/reports", body).status_code == 201
    with app.app_context():
        data = services().mailboxes.blobs.read(attachment_blob(upload))
    assert data == blob  # the late copy of the part changed nothing
    result = to_desk(app, store, desk_keys, tmp_path)  # and the inbox is whole
    assert (result.new, result.files, result.damaged) == (1, 1, 0)


def test_a_hostile_chunk_size_jams_nothing(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    submit_report(client, "MARKER-fine")
    for chunk in (2**62, -18, 0):
        entry = {
            "upload": "ab" * 16,
            "name": "x",
            "type": "",
            "size": 10,
            "alg": "aes256gcm-stream",
            "digest": "0" * 64,
            "key": b64encode(bytes(32)),
            "prefix": b64encode(bytes(7)),
            "chunk": chunk,
            "metadata_removed": False,
        }
        _, body = browser_style_request(org, "hostile", attachments=[entry])
        assert api_post(client, "/api/reports", body).status_code == 201
    result = to_desk(app, store, desk_keys, tmp_path)  # no MemoryError
    assert result.new == 4


def test_junk_cannot_starve_the_real_items(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    for _ in range(8):
        _, junk = browser_style_request(org, "x")
        junk["envelope"]["body"] = b64encode(bytes(1024 + 40))
        assert api_post(client, "/api/reports", junk).status_code == 201
    _no_js_report_with_file(client, b"the real evidence " * 100)
    for _ in range(20):  # cases take turns, in a new order each time
        with app.app_context():
            svc = services()
            export_inbox(svc.mailboxes, svc.organization, tmp_path / "i.tar", limit=5)
        cases.import_inbox(store, desk_keys, tmp_path / "i.tar")
        shown = [cases.show_case(store, desk_keys, c.case) for c in cases.list_cases(store)]
        if shown and all(f["state"] == "verified" for f in shown[0].items[0].files):
            break
    assert len(shown) == 1 and shown[0].items[0].files[0]["state"] == "verified"


def test_a_copy_under_a_new_id_hides_nothing(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    _no_js_report_with_file(client, b"kept evidence " * 100)
    inbox = _inbox(app, tmp_path / "i.tar")
    cases.import_inbox(store, desk_keys, inbox)
    case = cases.list_cases(store)[0].case
    with open_bundle(inbox, "inbox") as bundle:
        blob = next(i for i in bundle.manifest.items if i.kind == "blob")
        data = bundle.read(blob)
    copy_id = "cd" * 16
    copy = (Item(copy_id, "blob", f"blobs/{copy_id}", 0, "", {"mailbox": case}), data)
    cases.import_inbox(store, desk_keys, _rewrite(inbox, tmp_path / "c.tar", added=[copy]))
    shown = cases.show_case(store, desk_keys, case)
    assert [f["state"] for f in shown.items[0].files] == ["verified"]
    with open_bundle(desk_outbox(store, desk_keys, tmp_path / "o.tar"), "outbox") as bundle:
        ack = next(i for i in bundle.manifest.items if i.kind == "ack")
        acked = {a["id"] for a in json.loads(bundle.read(ack))["envelopes"]}
    assert {blob.id, copy_id} <= acked  # both names of the same bytes


def test_quarantine_keeps_only_what_is_kept_aside(
    app: Flask, client: FlaskClient, store: DeskStore, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    _no_js_report_with_file(client, b"evidence " * 5000)
    inbox = _inbox(app, tmp_path / "i.tar")

    def swap(item: Item, data: bytes) -> tuple[Item, bytes]:
        return (item, bytes(len(data))) if item.kind == "blob" else (item, data)

    cases.import_inbox(store, desk_keys, _rewrite(inbox, tmp_path / "e.tar", swap))
    quarantine = store.blobs.root / "quarantine"
    assert len(list(quarantine.glob("*"))) == 1
    (quarantine / ("ee" * 32)).write_bytes(b"left by an import cut short")
    to_desk(app, store, desk_keys, tmp_path)  # the good copy arrives
    assert list(quarantine.glob("*")) == [] and store.damaged() == []


def test_a_recipient_without_a_key_is_set_aside(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    desk_keys: DeskKeys,
    org: Organization,
    tmp_path: Path,
) -> None:
    submit_report(client, "MARKER-fine")
    bad = json.loads(seal("report", b"{}", org.encrypt, "browser").document)
    del bad["recipients"][0]["key"]
    evil = _rewrite(
        _inbox(app, tmp_path / "i.tar"),
        tmp_path / "e.tar",
        added=[_injected("report", json.dumps(bad).encode(), "0" * 32)],
    )
    result = cases.import_inbox(store, desk_keys, evil)
    assert (result.new, result.damaged) == (1, 1)


def test_a_log_cut_back_to_an_older_head_does_not_pass(
    app: Flask,
    client: FlaskClient,
    store: DeskStore,
    home: Path,
    desk_keys: DeskKeys,
    tmp_path: Path,
) -> None:
    from portal.desk.store import Checkpoint

    submit_report(client, "x")
    to_desk(app, store, desk_keys, tmp_path)
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "o1.tar"))
    first_head = store.checkpoints()[0]["n"]
    cases.show_case(store, desk_keys, cases.list_cases(store)[0].case)
    desk_outbox(store, desk_keys, tmp_path / "o2.tar")
    _rewrite_log(store.custody, lambda e: e["n"] <= first_head)
    with store.db.transaction() as s:
        s.query(Checkpoint).filter(Checkpoint.outbox > 1).delete()
    out = CliRunner(env={"PORTAL_DESK_PASSPHRASE": PASSPHRASE}).invoke(
        main, ["desk", "verify-log", "--home", str(home)]
    )
    assert out.exit_code != 0 and "outbox 2" in out.output
