"""Inbox bundles from portal to desk: export, import, and refusing bad bundles whole."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from portal.cli import main
from portal.desk import cases, keystore
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from portal.protocol.bundles import BundleError, Item, Manifest, open_bundle, write_bundle
from portal.protocol.organization import Organization
from portal.server.inbox import export_inbox
from portal.server.web.services import services
from tests.harness.web import PASSPHRASE, csrf_token


def _submit(client: FlaskClient, text: str) -> None:
    resp = client.post(
        "/report",
        data={"csrf_token": csrf_token(client), "what_happened": text},
        follow_redirects=True,
    )
    assert resp.status_code == 200


def _export(app: Flask, path: Path) -> Manifest:
    with app.app_context():
        svc = services()
        return export_inbox(svc.mailboxes, svc.organization, path)


def test_exported_reports_are_read_on_the_desk(
    app: Flask, client: FlaskClient, tmp_path: Path, desk_keys: DeskKeys
) -> None:
    for text in ("first MARKER-b1", "second MARKER-b2"):
        _submit(client, text)
    bundle = tmp_path / "inbox.tar"
    manifest = _export(app, bundle)
    assert [i.kind for i in manifest.items] == ["envelope", "envelope", "questionnaire"]
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        assert names[0] == "manifest.json"
        assert all(m.mtime == 0 for m in tar.getmembers())
    assert b"MARKER-b" not in bundle.read_bytes()

    store = DeskStore(tmp_path / "desk")
    assert cases.import_inbox(store, desk_keys, bundle) == cases.ImportResult(new=2, already=0)
    # Exporting and importing twice is harmless.
    _export(app, bundle)
    assert cases.import_inbox(store, desk_keys, bundle) == cases.ImportResult(new=0, already=2)
    texts = sorted(
        cases.show_case(store, desk_keys, row.case).items[0].content["fields"]["what_happened"]
        for row in cases.list_cases(store)
    )
    assert texts == ["first MARKER-b1", "second MARKER-b2"]


def _rewrite(src: Path, dst: Path, change: str) -> None:
    """Copy a bundle with one kind of damage."""
    with tarfile.open(src) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    if change == "flip":
        m, data = members[1]
        members[1] = (m, bytes([data[0] ^ 1]) + data[1:])
    elif change == "drop":
        members = members[:-1]
    elif change == "extra":
        extra = tarfile.TarInfo("envelopes/" + "f" * 32 + ".json")
        members.append((extra, b"{}"))
    elif change == "reorder":
        members = [members[0], *reversed(members[1:])]
    elif change == "manifest-last":
        members = [*members[1:], members[0]]
    with tarfile.open(dst, "w") as tar:
        for m, data in members:
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


@pytest.mark.parametrize("change", ["flip", "drop", "extra", "reorder", "manifest-last"])
def test_damaged_bundles_are_refused_whole(
    app: Flask, client: FlaskClient, tmp_path: Path, desk_keys: DeskKeys, change: str
) -> None:
    for text in ("one", "two"):
        _submit(client, text)
    good = tmp_path / "good.tar"
    _export(app, good)
    bad = tmp_path / "bad.tar"
    _rewrite(good, bad, change)
    store = DeskStore(tmp_path / "desk")
    with pytest.raises(BundleError):
        cases.import_inbox(store, desk_keys, bad)
    assert cases.list_cases(store) == []


def test_truncated_bundle_is_refused(
    app: Flask, client: FlaskClient, tmp_path: Path, desk_keys: DeskKeys
) -> None:
    _submit(client, "text")
    good = tmp_path / "good.tar"
    _export(app, good)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(good.read_bytes()[:1500])
    store = DeskStore(tmp_path / "desk")
    with pytest.raises(BundleError):
        cases.import_inbox(store, desk_keys, bad)
    assert cases.list_cases(store) == []


def test_bundle_for_another_organization_is_refused(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    _submit(client, "text")
    bundle = tmp_path / "inbox.tar"
    _export(app, bundle)
    keystore.init(tmp_path / "other", "pw", "Other", cost="interactive")
    other = keystore.unlock(tmp_path / "other", "pw")
    with pytest.raises(BundleError, match="another organization"):
        cases.import_inbox(DeskStore(tmp_path / "other"), other, bundle)


def test_an_outbox_is_not_an_inbox(tmp_path: Path, org: Organization) -> None:
    path = tmp_path / "b.tar"
    write_bundle(
        path,
        Manifest(type="outbox", org=org.encrypt[0].kid, created="2026-01-01", items=()),
        lambda item: io.BytesIO(),
    )
    with pytest.raises(BundleError, match="not an inbox"), open_bundle(path, "inbox"):
        pass


def test_manifest_listing_an_item_twice_is_refused(tmp_path: Path, org: Organization) -> None:
    item = Item(
        id="a" * 32,
        kind="envelope",
        name="envelopes/" + "a" * 32 + ".json",
        size=0,
        sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )
    path = tmp_path / "b.tar"
    write_bundle(
        path,
        Manifest(type="inbox", org=org.encrypt[0].kid, created="2026-01-01", items=(item, item)),
        lambda i: io.BytesIO(),
    )
    with pytest.raises(BundleError, match="twice"), open_bundle(path, "inbox"):
        pass


def test_cli_loop_export_import_cases_show(
    app: Flask,
    client: FlaskClient,
    tmp_path: Path,
    desk_home: Path,
    config: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _submit(client, "MARKER-cli the checkpoint")
    monkeypatch.setenv("PORTAL_DATA_DIR", str(app.extensions["portal"].config.data_dir))
    monkeypatch.setenv("PORTAL_DATABASE_URL", app.extensions["portal"].config.database_url)
    monkeypatch.setenv("PORTAL_KEYS", str(desk_home / "organization.json"))
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    bundle = tmp_path / "inbox.tar"
    result = runner.invoke(main, ["export-inbox", str(bundle)])
    assert result.exit_code == 0, result.output
    home = tmp_path / "desk"
    (home).mkdir()
    for name in ("desk.json", "organization.json"):
        (home / name).write_bytes((desk_home / name).read_bytes())
    result = runner.invoke(main, ["desk", "import", "--home", str(home), str(bundle)])
    assert result.exit_code == 0, result.output
    listed = json.loads(
        runner.invoke(main, ["desk", "cases", "--home", str(home), "--json"]).output
    )
    assert len(listed) == 1
    shown = runner.invoke(
        main, ["desk", "show", listed[0]["case"][:6], "--home", str(home), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    assert (
        json.loads(shown.output)["items"][0]["content"]["fields"]["what_happened"]
        == "MARKER-cli the checkpoint"
    )
    text = runner.invoke(main, ["desk", "show", listed[0]["case"], "--home", str(home)])
    assert "MARKER-cli the checkpoint" in text.output
    missing = runner.invoke(main, ["desk", "show", "zzzz", "--home", str(home)])
    assert missing.exit_code != 0 and "no case" in missing.output
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", "wrong")
    refused = runner.invoke(main, ["desk", "cases", "--home", str(home)])
    assert refused.exit_code != 0 and "not right" in refused.output
