"""Referring a case to a partner legal-aid organization: only with the reporter's
consent, only to a partner a person confirmed, and a partner's desk takes only
what a desk on its own partner list signed, for its own key."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from portal.cli import main
from portal.desk import cases, keystore, referrals
from portal.desk.custody import CustodyLog
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from tests.harness.loop import (
    desk_outbox,
    open_case,
    send_follow_up,
    submit_report,
    to_desk,
    to_portal,
)
from tests.harness.web import PASSPHRASE, files_containing

PARTNER_PASS = "the partner's own passphrase"


def _report(client: FlaskClient, text: str, share: str) -> str:
    evidence = [(b"%PDF-1.4 MARKER-evidence", "statement.pdf")]
    return submit_report(client, text, evidence, may_share=share)


@pytest.fixture
def partner_home(tmp_path: Path) -> Path:
    home = tmp_path / "partner-desk"
    keystore.init(home, PARTNER_PASS, "Partner Legal Aid", cost="interactive")
    return home


@pytest.fixture
def partner_keys(partner_home: Path) -> DeskKeys:
    return keystore.unlock(partner_home, PARTNER_PASS)


def _both_partners(
    home: Path, desk_keys: DeskKeys, partner_home: Path, partner_keys: DeskKeys
) -> referrals.Partner:
    ours = referrals.add_partner(DeskStore(home), desk_keys, partner_keys.organization)
    referrals.add_partner(DeskStore(partner_home), partner_keys, desk_keys.organization)
    return ours


def test_a_case_without_consent_is_never_referred(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys,
    partner_home: Path, partner_keys: DeskKeys, tmp_path: Path,
) -> None:  # fmt: skip
    partner = _both_partners(home, desk_keys, partner_home, partner_keys)
    store = DeskStore(home)
    for share in ("no", ""):
        _report(client, f"MARKER-no-consent {share}", share)
    to_desk(app, store, desk_keys, tmp_path)
    for row in cases.list_cases(store):
        with pytest.raises(referrals.ReferralRefused, match="did not answer yes"):
            referrals.refer(store, desk_keys, row.case, partner, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    assert all(e["event"] != "refer" for e in CustodyLog(home / "custody.log").entries())


def test_a_referral_travels_to_the_partner_and_the_reporter_is_told(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys,
    partner_home: Path, partner_keys: DeskKeys, tmp_path: Path,
) -> None:  # fmt: skip
    partner = _both_partners(home, desk_keys, partner_home, partner_keys)
    store = DeskStore(home)
    code = _report(client, "MARKER-referred account", "yes")
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    out = tmp_path / "referral.json"
    made = referrals.refer(store, desk_keys, case, partner, out, note="Urgent: hearing on Monday")
    assert made.items == 1 and made.files == 1
    assert b"MARKER-referred" not in out.read_bytes() and b"MARKER-evidence" not in out.read_bytes()

    theirs = DeskStore(partner_home)
    opened = referrals.import_referral(theirs, partner_keys, out)
    assert opened.partner.name == desk_keys.organization.name
    assert opened.body["items"][0]["fields"]["what_happened"] == "MARKER-referred account"
    assert base64.b64decode(opened.body["files"][0]["data"]) == b"%PDF-1.4 MARKER-evidence"
    assert opened.body["note"] == "Urgent: hearing on Monday"
    assert files_containing(partner_home, b"MARKER-referred") == []  # kept encrypted
    assert [e["event"] for e in CustodyLog(home / "custody.log").entries()][-2:] == [
        "refer",
        "reply",
    ]
    assert CustodyLog(partner_home / "custody.log").entries()[-1]["event"] == "referral_in"

    # The reporter reads it on the portal once the next outbox is applied.
    to_portal(app, desk_outbox(store, desk_keys, tmp_path / "outbox.tar"))
    status, page = open_case(client, code)
    assert status == 200 and "Partner Legal Aid" in page and "Referred to legal aid" in page


def test_a_partner_desk_refuses_strangers_forgeries_and_other_desks_files(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys,
    partner_home: Path, partner_keys: DeskKeys, tmp_path: Path,
) -> None:  # fmt: skip
    ours = referrals.add_partner(DeskStore(home), desk_keys, partner_keys.organization)
    store = DeskStore(home)
    _report(client, "MARKER-forge", "yes")
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    good = tmp_path / "good.json"
    referrals.refer(store, desk_keys, case, ours, good)
    theirs = DeskStore(partner_home)
    # 1. We are not on the partner's list yet: refused, nothing kept.
    with pytest.raises(referrals.ReferralRefused, match="not on this desk's partner list"):
        referrals.import_referral(theirs, partner_keys, good)
    referrals.add_partner(theirs, partner_keys, desk_keys.organization)

    def altered(change: str) -> Path:
        doc = json.loads(good.read_text())
        if change == "header":
            doc["header"]["case_name"] = "someone-else"
        elif change == "payload":
            raw = bytearray(base64.b64decode(doc["payload"]))
            raw[-1] ^= 1
            doc["payload"] = base64.b64encode(bytes(raw)).decode()
        elif change == "signer":
            forger = keystore.init(tmp_path / "forger", PARTNER_PASS, "Forger", cost="interactive")
            forged = keystore.unlock(tmp_path / "forger", PARTNER_PASS)
            header = dict(doc["header"], case_name="forged")
            doc["header"] = header
            doc["sig"] = base64.b64encode(
                forged.signing.sign(referrals._header_bytes(header)).signature
            ).decode()
            assert forger.verify_kid != desk_keys.organization.verify_kid
        path = tmp_path / f"{change}.json"
        path.write_text(json.dumps(doc))
        return path

    for change, why in (("header", "signature"), ("payload", "payload"), ("signer", "signature")):
        with pytest.raises(referrals.ReferralRefused, match=why):
            referrals.import_referral(theirs, partner_keys, altered(change))
    # 2. A referral made for another organization's key does not open here.
    third_home = tmp_path / "third"
    keystore.init(third_home, PARTNER_PASS, "Third", cost="interactive")
    third = referrals.add_partner(store, desk_keys, keystore.public_organization(third_home))
    for_third = tmp_path / "for-third.json"
    referrals.refer(store, desk_keys, case, third, for_third)
    with pytest.raises(referrals.ReferralRefused, match="another organization"):
        referrals.import_referral(theirs, partner_keys, for_third)
    assert referrals.received(theirs) == []
    referrals.import_referral(theirs, partner_keys, good)
    assert len(referrals.received(theirs)) == 1


def test_only_the_chosen_items_travel_and_the_cli_asks_for_fingerprints(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys,
    partner_home: Path, partner_keys: DeskKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    code = _report(client, "MARKER-first item", "yes")
    send_follow_up(client, code, "MARKER-second item")
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    org_file = partner_home / "organization.json"
    monkeypatch.setattr("portal.cli.desk._interactive", lambda: True)  # a person at a terminal
    declined = runner.invoke(
        main, ["desk", "partner", "add", "--home", str(home), str(org_file)], input="n\n"
    )
    assert declined.exit_code != 0 and referrals.partners(store) == []
    added = runner.invoke(
        main, ["desk", "partner", "add", "--home", str(home), str(org_file)], input="y\n"
    )
    assert added.exit_code == 0 and "signing key fingerprint" in added.output
    listed = runner.invoke(main, ["desk", "partner", "list", "--home", str(home)])
    assert "Partner Legal Aid" in listed.output
    out = tmp_path / "only-second.json"
    made = runner.invoke(
        main,
        ["desk", "refer", "--home", str(home), case[:8], "--to", "partner legal aid",
         "--out", str(out), "--item", "2"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    referrals.add_partner(DeskStore(partner_home), partner_keys, desk_keys.organization)
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PARTNER_PASS)
    imported = runner.invoke(main, ["desk", "import", "--home", str(partner_home), str(out)])
    assert imported.exit_code == 0 and "referral from Test Rights Network" in imported.output
    shown = runner.invoke(
        main,
        [
            "desk",
            "referrals",
            "--home",
            str(partner_home),
            "--show",
            imported.output.split("kept as ")[1][:12],
        ],
    )
    assert shown.exit_code == 0 and "MARKER-second item" in shown.output
    assert "MARKER-first item" not in shown.output and "Test Rights Network" in shown.output


def test_the_desk_pages_make_case_files_and_referrals_and_take_them_in(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys,
    partner_home: Path, partner_keys: DeskKeys, tmp_path: Path,
) -> None:  # fmt: skip
    import re
    import zipfile

    from portal.desk import casefile
    from portal.desk.web import create_desk_app
    from tests.harness.web import CSRF

    _both_partners(home, desk_keys, partner_home, partner_keys)
    store = DeskStore(home)
    _report(client, "MARKER-web referral", "yes")
    _report(client, "MARKER-web private", "no")
    to_desk(app, store, desk_keys, tmp_path)

    def browser(app_home: Path, passphrase: str) -> FlaskClient:
        desk = create_desk_app(app_home, token="t", idle_seconds=600)
        c = desk.test_client()
        c.get("/?token=t")
        token = CSRF.search(c.get("/").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        c.post("/unlock", data={"csrf_token": token, "passphrase": passphrase, "person": ""})
        return c

    ours = browser(home, PASSPHRASE)
    rows = {r.case: r for r in cases.list_cases(store)}
    pages = {case: ours.get(f"/cases/{case}").get_data(as_text=True) for case in rows}
    shared = next(c for c, page in pages.items() if "MARKER-web referral" in page)
    private = next(c for c in pages if c != shared)
    assert 'id="no-consent"' in pages[private] and 'id="refer"' in pages[shared]
    token = CSRF.search(pages[shared]).group(1)  # type: ignore[union-attr]
    refused = ours.post(
        f"/cases/{private}/refer", data={"csrf_token": token, "partner": "Partner Legal Aid"}
    )
    assert refused.status_code == 400 and "did not answer yes" in refused.get_data(as_text=True)

    bundle = ours.post(f"/cases/{shared}/casefile", data={"csrf_token": token})
    assert bundle.status_code == 200 and bundle.mimetype == "application/zip"
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as z:
        z.extractall(unzipped)
    folder = next(unzipped.iterdir())
    assert casefile.verify_case(folder, desk_keys.organization).ok

    referral = ours.post(
        f"/cases/{shared}/refer",
        data={"csrf_token": token, "partner": "Partner Legal Aid", "item": ["1"], "note": "see me"},
    )
    assert referral.status_code == 200 and b"MARKER-web" not in referral.data
    theirs = browser(partner_home, PARTNER_PASS)
    ptoken = CSRF.search(theirs.get("/import").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    imported = theirs.post(
        "/import",
        data={"csrf_token": ptoken, "inbox": (io.BytesIO(referral.data), "referral.json")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = imported.get_data(as_text=True)
    assert "MARKER-web referral" in page and "Test Rights Network" in page and "see me" in page
    link = re.search(r'href="(/referrals/[0-9a-f]+/files/1)"', page)
    assert link and theirs.get(link.group(1)).data.startswith(b"%PDF-1.4 MARKER-evidence")
    assert "Test Rights Network" in theirs.get("/referrals").get_data(as_text=True)
    # Published figures from the statistics page.
    ours.post("/stats/publish", data={"csrf_token": token, "min_count": "2"})
    from portal.desk import transparency

    assert transparency.published(store) is not None


def test_replays_relabelled_senders_and_hostile_shapes_are_refused_cleanly(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys,
    partner_home: Path, partner_keys: DeskKeys, tmp_path: Path,
) -> None:  # fmt: skip
    import hashlib

    from nacl.public import PublicKey, SealedBox
    from nacl.secret import SecretBox

    partner = _both_partners(home, desk_keys, partner_home, partner_keys)
    store, theirs = DeskStore(home), DeskStore(partner_home)
    _report(client, "MARKER-replay", "yes")
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    good = tmp_path / "good.json"
    referrals.refer(store, desk_keys, case, partner, good)
    referrals.import_referral(theirs, partner_keys, good)
    # The same payload again, even re-serialised with an extra key: already here.
    again = tmp_path / "again.json"
    again.write_text(json.dumps(dict(json.loads(good.read_text()), extra=1)))
    with pytest.raises(referrals.ReferralRefused, match="imported already"):
        referrals.import_referral(theirs, partner_keys, again)

    # Another listed partner takes our referral and re-signs its header as its own.
    mallory_home = tmp_path / "mallory"
    keystore.init(mallory_home, PARTNER_PASS, "Mallory Aid", cost="interactive")
    mallory = keystore.unlock(mallory_home, PARTNER_PASS)
    referrals.add_partner(theirs, partner_keys, mallory.organization)
    doc = json.loads(good.read_text())
    header = dict(
        doc["header"],
        **{"from": {"name": "Mallory Aid", "verify_kid": mallory.organization.verify_kid}},
    )
    raw = base64.b64decode(doc["payload"])
    header["payload_sha256"] = hashlib.sha256(raw + b"").hexdigest()
    relabelled = {
        "header": header,
        "sig": base64.b64encode(
            mallory.signing.sign(referrals._header_bytes(header)).signature
        ).decode(),
        "payload": doc["payload"],
    }
    (tmp_path / "relabelled.json").write_text(json.dumps(relabelled))
    with pytest.raises(referrals.ReferralRefused, match="not the one outside"):
        referrals.import_referral(theirs, partner_keys, tmp_path / "relabelled.json")

    # A listed partner's signed referral whose body has the wrong shape: refused whole.
    def signed_body(body: object) -> Path:
        key = bytes(32)
        sealed = bytes(SecretBox(key).encrypt(json.dumps(body).encode()))
        head = {
            "v": 1, "kind": "referral", "case_name": "x", "made_at": "now",
            "from": {"name": "Mallory Aid", "verify_kid": mallory.organization.verify_kid},
            "to_kid": partner_keys.organization.encrypt[0].kid,
            "sealed_key": base64.b64encode(
                bytes(SealedBox(PublicKey(partner_keys.organization.encrypt[0].pk)).encrypt(key))
            ).decode(),
            "payload_sha256": hashlib.sha256(sealed).hexdigest(),
        }  # fmt: skip
        path = tmp_path / f"shape{abs(hash(json.dumps(body))) % 10**6}.json"
        sig = mallory.signing.sign(referrals._header_bytes(head)).signature
        path.write_text(
            json.dumps(
                {
                    "header": head,
                    "sig": base64.b64encode(sig).decode(),
                    "payload": base64.b64encode(sealed).decode(),
                }
            )
        )
        return path

    for body in (["a list"], {"case": "x", "items": [], "files": []}, {"items": [1], "files": []}):
        with pytest.raises(referrals.ReferralRefused, match="does not open"):
            referrals.import_referral(theirs, partner_keys, signed_body(body))
    assert len(referrals.received(theirs)) == 1  # nothing half-kept
    # A stranger's deeply nested file is refused before anything else is done.
    deep = tmp_path / "deep.json"
    deep.write_text('{"header":' + "[" * 100_000)
    with pytest.raises(referrals.ReferralRefused, match="not a referral"):
        referrals.import_referral(theirs, partner_keys, deep)
