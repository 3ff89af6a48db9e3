"""A case file for a lawyer or a court: it verifies as written, with our command
and with OpenSSL and sha256sum, and one changed byte anywhere makes it fail,
naming the item."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from portal.cli import main
from portal.desk import casefile, cases
from portal.desk.custody import CustodyLog
from portal.desk.keystore import DeskKeys
from portal.desk.store import DeskStore
from tests.harness.loop import send_follow_up, submit_report, to_desk
from tests.harness.web import PASSPHRASE

PHOTO = b"\xff\xd8MARKER-photo-bytes" + bytes(range(256)) * 8


@pytest.fixture
def exported(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> tuple[Path, str]:
    submit_report(client, "They took him at the <b>checkpoint</b>", [(PHOTO, "photo.jpg")])
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    cases.show_case(store, desk_keys, case)  # a view: a custody entry about the case
    out = tmp_path / "casefile"
    made = casefile.export_case(store, desk_keys, case, out)
    assert made.evidence == 1 and made.left_out == ()
    return out, case


def test_a_case_file_holds_the_case_and_verifies(
    exported: tuple[Path, str], home: Path, desk_keys: DeskKeys
) -> None:
    out, case = exported
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names[:1] == ["SHA256SUMS"] and {"VERIFY.txt", "case.html", "custody.jsonl"} <= set(
        names
    )
    evidence = [n for n in names if n.startswith("evidence/")]
    assert len(evidence) == 1 and (out / evidence[0]).read_bytes() == PHOTO
    page = (out / "case.html").read_text()
    assert "&lt;b&gt;checkpoint&lt;/b&gt;" in page and "<script" not in page
    custody = [json.loads(x) for x in (out / "custody.jsonl").read_text().splitlines()]
    assert custody and all(e["details"]["case"] == case for e in custody)
    verdict = casefile.verify_case(out, desk_keys.organization)
    assert verdict.ok, verdict.checks
    # The export itself is in the desk's custody log, naming the manifest's hash.
    last = CustodyLog(home / "custody.log").entries()[-1]
    assert last["event"] == "case_file" and last["details"]["case"] == case
    out_cli = CliRunner().invoke(main, ["verify-case", str(out)])
    assert out_cli.exit_code == 0, out_cli.output
    assert "the case file verifies" in out_cli.output
    assert desk_keys.organization.verify_kid[:4] in out_cli.output


def test_common_tools_verify_it_as_verify_txt_says(exported: tuple[Path, str]) -> None:
    out, _ = exported
    if shutil.which("openssl") is None or shutil.which("sha256sum") is None:
        pytest.fail("openssl and sha256sum are Debian base tools the README relies on")
    sig = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin",
         "-in", "manifest.json", "-sigfile", "manifest.sig"],
        cwd=out, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert sig.returncode == 0 and "Signature Verified Successfully" in sig.stdout
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True, timeout=30
    )
    assert sums.returncode == 0 and "FAILED" not in sums.stdout
    (out / "manifest.json").write_bytes(
        (out / "manifest.json").read_bytes().replace(b'"v": 1', b'"v": 2')
    )
    sig = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signing-key.pem", "-rawin",
         "-in", "manifest.json", "-sigfile", "manifest.sig"],
        cwd=out, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert sig.returncode != 0


def _flip(path: Path, at: int = -2) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "target, named",
    [
        ("case.html", "case.html"),
        ("evidence", "evidence/"),
        ("custody.jsonl", "custody.jsonl"),
        ("VERIFY.txt", "VERIFY.txt"),
        ("manifest.json", "manifest.sig"),
        ("manifest.sig", "manifest.sig"),
        ("signing-key.pem", "signing-key.pem"),
    ],
)
def test_one_changed_byte_fails_naming_the_item(
    exported: tuple[Path, str], desk_keys: DeskKeys, target: str, named: str
) -> None:
    out, _ = exported
    path = next((out / "evidence").iterdir()) if target == "evidence" else out / target
    _flip(path, 40 if target == "signing-key.pem" else -2)
    verdict = casefile.verify_case(out, desk_keys.organization)
    assert not verdict.ok
    failed = [item for item, held, _ in verdict.checks if not held]
    assert any(item.startswith(named) for item in failed), verdict.checks
    result = CliRunner().invoke(main, ["verify-case", str(out)])
    assert result.exit_code != 0 and "does NOT verify" in result.output


def test_a_custody_entry_rewritten_and_rehashed_still_fails(
    exported: tuple[Path, str], desk_keys: DeskKeys
) -> None:
    from portal.desk.custody import entry_hash

    out, _ = exported
    lines = (out / "custody.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    entry["by"] = "someone else"
    entry["hash"] = entry_hash(entry)  # a consistent entry, but not the one signed
    lines[0] = json.dumps(entry, sort_keys=True)
    (out / "custody.jsonl").write_text("\n".join(lines) + "\n")
    verdict = casefile.verify_case(out, desk_keys.organization)
    failed = [item for item, held, _ in verdict.checks if not held]
    # The changed file fails on its hash, and none of it is read as entries.
    assert "custody.jsonl" in failed and "custody entries" in failed


def test_an_added_file_or_another_signer_fails(
    exported: tuple[Path, str], desk_keys: DeskKeys, tmp_path: Path
) -> None:
    out, _ = exported
    (out / "evidence" / "planted.jpg").write_bytes(b"not from the desk")
    verdict = casefile.verify_case(out, desk_keys.organization)
    assert ("evidence/planted.jpg", False, "not in the signed manifest (added)") in verdict.checks
    (out / "evidence" / "planted.jpg").unlink()
    # Re-signed with a key of someone else's, and their key put in the folder: our
    # command, given the organization's published file, names the key as wrong.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from nacl.signing import SigningKey

    forger = SigningKey.generate()
    pem = Ed25519PublicKey.from_public_bytes(bytes(forger.verify_key)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (out / "signing-key.pem").write_bytes(pem)
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == "signing-key.pem":
            entry["sha256"], entry["size"] = hashlib.sha256(pem).hexdigest(), len(pem)
    body = json.dumps(manifest).encode()
    (out / "manifest.json").write_bytes(body)
    (out / "manifest.sig").write_bytes(forger.sign(body).signature)
    alone = casefile.verify_case(out)  # without the published key: it checks, but…
    assert alone.ok and alone.signer != casefile.verify_case(out, desk_keys.organization).signer
    verdict = casefile.verify_case(out, desk_keys.organization)
    assert (
        not verdict.ok
        and ("signing-key.pem", False, "not the organization's key") in verdict.checks
    )
    org_file = tmp_path / "organization.json"
    org_file.write_text(json.dumps(desk_keys.organization.to_json()))
    result = CliRunner().invoke(main, ["verify-case", str(out), "--organization", str(org_file)])
    assert result.exit_code != 0


def test_export_case_on_the_cli_refuses_a_folder_in_use(
    exported: tuple[Path, str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, case = exported
    monkeypatch.setenv("PORTAL_DESK_PASSPHRASE", PASSPHRASE)
    result = CliRunner().invoke(
        main, ["desk", "export-case", "--home", str(home), case, "--out", str(out)]
    )
    assert result.exit_code != 0 and "not empty" in result.output
    fresh = out.parent / "again"
    result = CliRunner().invoke(
        main, ["desk", "export-case", "--home", str(home), case[:8], "--out", str(fresh)]
    )
    assert result.exit_code == 0, result.output
    assert casefile.verify_case(fresh).ok


def test_follow_ups_and_replies_are_in_the_case_file(
    app: Flask, client: FlaskClient, home: Path, desk_keys: DeskKeys, tmp_path: Path
) -> None:
    from portal.desk import replies

    code = submit_report(client, "first account")
    send_follow_up(client, code, "MARKER-later detail")
    store = DeskStore(home)
    to_desk(app, store, desk_keys, tmp_path)
    case = cases.list_cases(store)[0].case
    replies.reply(store, desk_keys, case, "legal_aid", "We passed it to a lawyer.")
    casefile.export_case(store, desk_keys, case, tmp_path / "cf")
    page = (tmp_path / "cf" / "case.html").read_text()
    assert "MARKER-later detail" in page and "We passed it to a lawyer." in page
    assert "Referred to legal aid" in page


def test_links_odd_files_and_unsigned_names_anywhere_fail(
    exported: tuple[Path, str], desk_keys: DeskKeys, tmp_path: Path
) -> None:
    import os

    out, _ = exported
    evidence = next((out / "evidence").iterdir())
    outside = tmp_path / "outside-copy"
    outside.write_bytes(evidence.read_bytes())
    evidence.unlink()
    evidence.symlink_to(outside)  # same bytes, but outside the folder and changeable
    (out / "evidence" / "manifest.json").write_text("{}")  # an unsigned name, one level down
    (out / "more").symlink_to("/etc")
    os.mkfifo(out / "pipe")
    (out / "empty").mkdir()
    verdict = casefile.verify_case(out, desk_keys.organization)
    failed = {item for item, held, _ in verdict.checks if not held}
    assert evidence.relative_to(out).as_posix() in failed
    assert {"evidence/manifest.json", "more", "pipe", "empty"} <= failed
    assert not verdict.ok


def test_a_hostile_folder_never_crashes_the_check(tmp_path: Path, desk_keys: DeskKeys) -> None:
    """Self-signed junk (a key of the attacker's, in the folder) is reported, not a traceback."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from nacl.signing import SigningKey

    forger = SigningKey.generate()
    pem = Ed25519PublicKey.from_public_bytes(bytes(forger.verify_key)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bodies = [
        b"[1, 2]",
        b'{"v": 1}',
        b'{"v": 1, "files": [{"path": 5}], "custody_entries": [], "custody_head": {"n": 0}}',
        b'{"v": 1, "files": [], "custody_entries": [[1]], "custody_head": {"n": "x"}}',
        b"[" * 100_000,
    ]
    for n, body in enumerate(bodies):
        folder = tmp_path / f"junk{n}"
        folder.mkdir()
        (folder / "manifest.json").write_bytes(body)
        (folder / "manifest.sig").write_bytes(forger.sign(body).signature)
        (folder / "signing-key.pem").write_bytes(pem)
        (folder / "custody.jsonl").write_bytes(b'{"n": [1], "hash": {}}\n\xff\xfe\n')
        verdict = casefile.verify_case(folder)
        assert not verdict.ok
        result = CliRunner().invoke(main, ["verify-case", str(folder)])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
