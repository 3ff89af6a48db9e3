"""The insider attacks of the review, repeated against a real gunicorn (public
and relay listeners), a copy of its data dir, and the real `portal` commands."""

from __future__ import annotations

import hashlib
import http.cookiejar
import io
import json
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from portal.protocol.bundles import Item, Manifest, open_bundle, write_bundle
from portal.protocol.organization import Organization
from tests.harness.http import Session
from tests.harness.live import DESK_ENV, LivePortal, fresh_desk_copy


def _forged_cookies(data_dir: Path) -> list[str]:
    """Session cookies re-signed, Flask-style, with every key a copy of the data dir holds."""
    payloads = [
        {"case": {"id": "0" * 32, "kind": "report", "gen": None, "seen": int(time.time())}},
        {"staff": {"id": 1, "seen": int(time.time())}},
    ]
    out = []
    for key_file in sorted(data_dir.glob("*.key")):
        forger = Flask("forger")
        forger.secret_key = key_file.read_bytes()
        signer = SecureCookieSessionInterface().get_signing_serializer(forger)
        assert signer is not None
        out += [signer.dumps(p) for p in payloads]
    return out


def _with_cookie(url: str, name: str, value: str) -> Session:
    """A fresh client holding one captured (or forged) cookie, as a browser would."""
    s = Session(url)
    host = urlsplit(url).hostname or ""
    s.jar.set_cookie(
        http.cookiejar.Cookie(
            0,
            name,
            value,
            None,
            False,
            host,
            False,
            False,
            "/",
            True,
            False,
            None,
            False,
            None,
            None,
            {},
        )
    )
    return s


def _open_case(live: LivePortal, org: Organization) -> tuple[Session, str]:
    """A reporter (browser-style) with an open case; returns the session and its code."""
    from tests.harness.reporters import Timings, open_case, submit

    s = Session(live.url)
    code = submit(s, org, Timings(), "MARKER-insider")
    assert open_case(s, org, Timings(), code)
    return s, code


def _cookie(s: Session, name: str) -> str:
    return next(c.value for c in s.jar if c.name == name)


def test_forged_and_replayed_sessions_open_nothing(
    live: LivePortal, org: Organization, tmp_path: Path
) -> None:
    copy = tmp_path / "data-copy"
    shutil.copytree(live.data_dir, copy)  # what a backup thief holds
    for forged in _forged_cookies(copy):
        thief = _with_cookie(live.url, "portal_session", forged)
        thief.get("/case")
        for path in ("/api/case/rotate", "/api/case/confirm", "/api/case/message"):
            assert thief.api("POST", path, {}).status in (400, 403), path
        relay_thief = _with_cookie(live.relay_url, "relay_session", forged)
        assert relay_thief.request("GET", "/staff/inbox.tar").status == 403
    # A cookie captured while a case is open stops working when the reporter leaves.
    reporter, _ = _open_case(live, org)
    captured = _cookie(reporter, "portal_session")
    assert reporter.api("POST", "/api/case/leave", {}).status == 200
    thief = _with_cookie(live.url, "portal_session", captured)
    thief.get("/case")
    assert thief.api("POST", "/api/case/rotate", {}).status == 403
    # And the same after the relay's logout.
    made = json.loads(live.portal("staff", "add", "insider-test", "--json").stdout)
    staff = Session(live.relay_url)
    staff.get("/staff/")
    resp = staff.form(
        "/staff/login",
        {
            "name": "insider-test",
            "passphrase": made["passphrase"],
            "totp": pyotp.TOTP(made["totp_secret"]).now(),
        },
    )
    assert resp.status == 200 and "download-inbox" in resp.text
    captured = _cookie(staff, "relay_session")
    staff.get("/staff/")
    staff.form("/staff/logout", {})
    thief = _with_cookie(live.relay_url, "relay_session", captured)
    assert thief.request("GET", "/staff/inbox.tar").status == 403


def test_the_relay_is_unreachable_from_the_public_listener(live: LivePortal) -> None:
    url = urlsplit(live.url)
    for host in ("relay.internal", urlsplit(live.relay_url).netloc, "localhost"):
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(
                f"GET /staff/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            assert sock.recv(64).startswith(b"HTTP/1.1 404")


def test_an_unauthenticated_outbox_is_refused_before_it_is_read(live: LivePortal) -> None:
    url = urlsplit(live.relay_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = (
            "POST /staff/outbox HTTP/1.1\r\nHost: relay\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\n"
            f"Content-Length: {256 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--x\r\n" + bytes(64 * 1024))
        started = time.monotonic()
        answer = sock.recv(64)
        assert answer.startswith(b"HTTP/1.1 403") and time.monotonic() - started < 5
    assert list(live.data_dir.glob("relay/*")) == []  # nothing was spooled


def test_evidence_altered_in_transit_survives_the_real_commands(
    live: LivePortal, desk_home: Path, tmp_path: Path
) -> None:
    """Tamper with a file in an inbox made by `portal export-inbox`, fix its manifest,
    import it with `portal desk import`: the desk must not acknowledge it."""
    s = Session(live.url)
    s.get("/report")
    boundary = "b0undary"
    evidence = b"evidence " * 20_000
    part = f"--{boundary}\r\nContent-Disposition: form-data; name="
    body = (
        (
            f'{part}"csrf_token"\r\n\r\n{s.token}\r\n'
            f'{part}"what_happened"\r\n\r\nMARKER-transit\r\n'
            f'{part}"files"; filename="e.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + evidence
        + f"\r\n--{boundary}--\r\n".encode()
    )
    resp = s.request(
        "POST", "/report", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert resp.status == 200
    inbox, evil = tmp_path / "inbox.tar", tmp_path / "evil.tar"
    assert live.portal("export-inbox", str(inbox)).returncode == 0
    with open_bundle(inbox, "inbox") as bundle:
        items, contents = [], {}
        for item in bundle.manifest.items:
            data = bundle.read(item)
            if item.kind == "blob":
                data = bytes(len(data))
                item = Item(
                    item.id,
                    item.kind,
                    item.name,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    item.meta,
                )
            items.append(item)
            contents[item.name] = data
        manifest = Manifest(
            "inbox",
            bundle.manifest.org,
            bundle.manifest.created,
            tuple(items),
            bundle.manifest.extra,
        )
    write_bundle(evil, manifest, lambda i: io.BytesIO(contents[i.name]))
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    out = live.portal("desk", "import", "--home", str(home), str(evil), env=DESK_ENV)
    assert out.returncode == 0 and "kept aside as damaged" in out.stderr
    outbox = tmp_path / "outbox.tar"
    assert (
        live.portal("desk", "export", "--home", str(home), str(outbox), env=DESK_ENV).returncode
        == 0
    )
    assert live.portal("import-outbox", str(outbox)).returncode == 0
    assert live.portal("purge").returncode == 0
    blobs = list((live.data_dir / "blobs" / "attachments").glob("*"))
    assert blobs and all(b.stat().st_size > 0 for b in blobs)
    # The next inbox carries the good copy again; the desk verifies and keeps it.
    assert live.portal("export-inbox", str(inbox)).returncode == 0
    out = live.portal("desk", "import", "--home", str(home), str(inbox), env=DESK_ENV)
    assert out.returncode == 0 and "and 1 file(s)" in out.stdout, out.stdout
