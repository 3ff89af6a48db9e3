"""Hardening on a real gunicorn: headers on every response, failures that look
and time the same, SIGKILL in the middle of operations, a bounded load, logs."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from portal.desk import cases, keystore, replies
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.encoding import b64encode
from portal.protocol.mailbox import new_mailbox_key
from portal.protocol.organization import Organization
from tests.harness.http import Session
from tests.harness.live import BIN, ROOT, LivePortal, fresh_desk_copy, live_portal
from tests.harness.loop import new_code_and_rotation
from tests.harness.reporters import Timings, run_load, submit
from tests.harness.web import NO_BODY_ROUTES, PASSPHRASE, post_routes

# Times failures and loads the portal: runs alone, not beside other tests (Makefile).
pytestmark = pytest.mark.alone

ADDRESS_OR_AGENT = (b"127.0.0.1", b"Mozilla", b"python-urllib", b"HeadlessChrome", b"User-Agent")


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory, desk_home: Path) -> Iterator[LivePortal]:
    with live_portal(
        tmp_path_factory.mktemp("hard"),
        desk_home / "organization.json",
        workers=2,
        extra_env={"PORTAL_DERIVE_RATE": "1000"},
    ) as portal:
        yield portal


def _db(live: LivePortal) -> sqlite3.Connection:
    return sqlite3.connect(live.data_dir / "portal.sqlite", timeout=30)


def _count(live: LivePortal, table: str) -> int:
    with _db(live) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def _consistent(live: LivePortal) -> None:
    """The database checks out and nothing half-applied is visible."""
    with _db(live) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = db.execute(
            "SELECT count(*) FROM mailboxes m WHERE m.kind = 'report' AND NOT EXISTS "
            "(SELECT 1 FROM envelopes e WHERE e.mailbox_id = m.id)"
        ).fetchone()[0]
        assert orphans == 0
        # Every envelope holds its whole ciphertext, in its row (one commit with it).
        for document, sha256 in db.execute("SELECT document, sha256 FROM envelopes"):
            assert document is not None and hashlib.sha256(document).hexdigest() == sha256


def _partial(
    live: LivePortal, s: Session, method: str, path: str, body: bytes, sent: int, content_type: str
) -> socket.socket:
    """Start a request and send only ``sent`` bytes of its body."""
    url = urlsplit(live.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.jar)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: {cookie}\r\n"
        f"X-CSRFToken: {s.token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body[:sent])
    time.sleep(0.4)
    return sock


# --- headers ------------------------------------------------------------------------


def test_every_response_of_a_real_gunicorn_carries_the_headers(hard: LivePortal) -> None:
    s = Session(hard.url)
    page = s.get("/report").text
    static = page.split('src="')[1].split('"')[0]
    for path, expect in (
        ("/", 200),
        ("/report", 200),
        ("/case", 200),
        ("/staff/", 404),  # the relay has its own listener
        ("/nowhere", 404),
        (static, 200),
    ):
        resp = s.request("GET", path)
        assert resp.status == expect, path
        h = {k.lower(): v for k, v in resp.headers.items()}
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["referrer-policy"] == "no-referrer"
        assert h["cross-origin-opener-policy"] == "same-origin"
        assert "camera=()" in h["permissions-policy"]
        assert "strict-transport-security" not in h
        assert "server" not in h  # gunicorn does not name itself
        assert h["cache-control"] == (
            "public, max-age=31536000, immutable" if path == static else "no-store"
        )
    resp = s.api("POST", "/api/case/open", {"lookup": "nope"})
    assert resp.status == 400 and "content-security-policy" in {k.lower() for k in resp.headers}


# --- uniform failure ------------------------------------------------------------------


def _mann_whitney_z(a: list[float], b: list[float]) -> float:
    ranked = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks: list[float] = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r_a = sum(r for r, (_, g) in zip(ranks, ranked, strict=True) if g == 0)
    n1, n2 = len(a), len(b)
    u = r_a - n1 * (n1 + 1) / 2
    mean, sd = n1 * n2 / 2, (n1 * n2 * (n1 + n2 + 1) / 12) ** 0.5
    return (u - mean) / sd


def test_every_failing_code_looks_and_times_the_same(hard: LivePortal, org: Organization) -> None:
    s = Session(hard.url)
    dead = submit(s, org, Timings(), "rotated away")
    s.get("/case")
    first = s.form("/case", {"code": dead})
    new, rotation = new_code_and_rotation(first.text)
    assert (
        s.form(
            "/case/confirm", {"rotation": rotation, "new_code": new, "last_group": new[-4:]}
        ).status
        == 200
    )
    live_code = submit(Session(hard.url), org, Timings(), "has a pending code")
    opener = Session(hard.url)
    opener.get("/case")
    pending_page = opener.form("/case", {"code": live_code}).text
    pending, _ = new_code_and_rotation(pending_page)
    unknown = codes.generate()

    def typo(code: str) -> str:
        return code[:-1] + str((int(code[-1]) + 1) % 10)

    kinds = {
        "typo": typo(live_code),  # caught only on the server: the check digit fails
        "typo of no case": typo(unknown),
        "unknown": unknown,
        "rotated": dead,
        "pending": pending,
    }
    times: dict[str, list[float]] = {k: [] for k in kinds}
    bodies: dict[str, set[tuple[int, str]]] = {k: set() for k in kinds}
    probe = Session(hard.url)
    probe.get("/case")
    order = [k for k in kinds for _ in range(25)]
    random.Random(7).shuffle(order)
    for kind in order:
        start = time.perf_counter()
        resp = probe.form("/case", {"code": kinds[kind]})
        times[kind].append(time.perf_counter() - start)
        token_free = resp.text.replace(probe.token, "")
        bodies[kind].add((resp.status, token_free.split('name="csrf_token" value="')[0]))
    # One answer, byte for byte, for every code that could be a code; a typing
    # mistake gets the check-digit hint, the same whether or not a case is near.
    assert len({b for k, v in bodies.items() if not k.startswith("typo") for b in v}) == 1
    assert len(bodies["typo"] | bodies["typo of no case"]) == 1
    assert next(iter(bodies["unknown"]))[0] == 404
    medians = {k: statistics.median(v) for k, v in times.items()}
    for kind in ("typo", "rotated", "pending"):
        z = _mann_whitney_z(times[kind], times["unknown"])
        assert abs(z) < 4.0, (kind, z, medians)
        assert abs(medians[kind] - medians["unknown"]) < 0.25 * medians["unknown"], medians


# --- crash safety ---------------------------------------------------------------------


def test_sigkill_mid_upload_part_loses_nothing(hard: LivePortal) -> None:
    s = Session(hard.url)
    s.get("/report")
    part = 1024 * 1024
    blob = random.randbytes(2 * part)
    upload = s.paid("/api/uploads", {"size": len(blob), "part_size": part}).json()["upload"]
    assert s.api("PUT", f"/api/uploads/{upload}/parts/0", raw=blob[:part]).status == 200
    sock = _partial(
        hard,
        s,
        "PUT",
        f"/api/uploads/{upload}/parts/1",
        blob[part:],
        300_000,
        "application/octet-stream",
    )
    hard.kill_workers()
    sock.close()
    _consistent(hard)
    assert s.api("GET", f"/api/uploads/{upload}").json()["received"] == 1
    assert s.api("PUT", f"/api/uploads/{upload}/parts/1", raw=blob[part:]).status == 200
    assert (hard.data_dir / "blobs" / "attachments" / upload).read_bytes() == blob


def test_sigkill_mid_submission_and_mid_rotation(hard: LivePortal, org: Organization) -> None:
    from tests.harness.sealing import browser_style_request

    before = _count(hard, "mailboxes")
    s = Session(hard.url)
    s.get("/report")
    code, body = browser_style_request(org, "interrupted")
    raw = json.dumps(body).encode()
    sock = _partial(hard, s, "POST", "/api/reports", raw, len(raw) // 2, "application/json")
    hard.kill_workers()
    sock.close()
    _consistent(hard)
    assert _count(hard, "mailboxes") == before
    assert s.paid("/api/reports", body).status == 201  # simply retried

    opener = Session(hard.url)
    opener.get("/case")
    derived = codes.derive(code, org.code_salt, org.kdf)
    assert opener.api("POST", "/api/case/open", {"lookup": b64encode(derived.lookup)}).status == 200
    from nacl.public import PrivateKey
    from nacl.secret import SecretBox

    with _db(hard) as db:
        wrapped = db.execute(
            'SELECT wrapped_key FROM mailboxes WHERE "index" = ?', (derived.index,)
        ).fetchone()[0]
    fresh = codes.generate()
    key = new_mailbox_key(fresh, org, PrivateKey(SecretBox(derived.wrap).decrypt(wrapped)))
    rotate = json.dumps({"index": b64encode(key.index), "wrapped_key": b64encode(key.wrapped_key)})
    sock = _partial(
        hard, opener, "POST", "/api/case/rotate", rotate.encode(), 20, "application/json"
    )
    hard.kill_workers()
    sock.close()
    _consistent(hard)
    again = Session(hard.url)
    again.get("/case")
    assert again.api("POST", "/api/case/open", {"lookup": b64encode(derived.lookup)}).status == 200


def test_sigkill_during_outbox_import_is_all_or_nothing(
    hard: LivePortal, desk_home: Path, tmp_path: Path, org: Organization
) -> None:
    submit(Session(hard.url), org, Timings(), "many replies")
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    keys = keystore.unlock(home, PASSPHRASE)
    store = DeskStore(home)
    assert hard.portal("export-inbox", str(tmp_path / "inbox.tar")).returncode == 0
    cases.import_inbox(store, keys, tmp_path / "inbox.tar")
    case = cases.list_cases(store)[0].case
    for n in range(300):
        replies.reply(store, keys, case, None, f"reply {n}")
    outbox = tmp_path / "outbox.tar"
    export_outbox(store, keys, outbox)
    before = _count(hard, "replies")
    for delay in (0.05, 0.15, 0.3, 0.6):
        proc = subprocess.Popen(
            [str(BIN / "portal"), "import-outbox", str(outbox)],
            cwd=ROOT,
            env=hard.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.kill()
        proc.wait()
        _consistent(hard)
        assert _count(hard, "replies") in (before, before + 300)  # never half
    out = hard.portal("import-outbox", str(outbox))
    assert out.returncode == 0 or "already imported" in out.stderr
    assert _count(hard, "replies") == before + 300


def test_workers_killed_during_a_stream_of_submissions(hard: LivePortal, org: Organization) -> None:
    done: list[str] = []

    def reporter() -> None:
        for i in range(24):
            for _attempt in range(5):  # a reporter whose connection broke simply sends again
                t = Timings()
                try:
                    done.append(submit(Session(hard.url), org, t, f"stream {i}"))
                    if not t.errors:
                        break
                except OSError:
                    time.sleep(0.2)

    thread = threading.Thread(target=reporter)
    thread.start()
    for _ in range(3):
        time.sleep(0.4)
        hard.kill_workers()
    thread.join()
    _consistent(hard)
    s = Session(hard.url)
    s.get("/case")
    opened = sum(
        s.api(
            "POST",
            "/api/case/open",
            {"lookup": b64encode(codes.derive(c, org.code_salt, org.kdf).lookup)},
        ).status
        == 200
        for c in done[-5:]
    )
    assert opened == min(5, len(done))


# --- load and logs --------------------------------------------------------------------


def test_a_bounded_load_has_no_errors(hard: LivePortal, org: Organization) -> None:
    timings = run_load(hard.url, org, seconds=6, clients=4)
    assert timings.errors == []
    assert len(timings.samples["submit"]) > 10


def test_the_logs_hold_no_address_agent_code_or_body(hard: LivePortal) -> None:
    log = hard.log_path.read_bytes().replace(hard.url.encode(), b"")
    for needle in ADDRESS_OR_AGENT:
        assert needle not in log, needle
    assert b"what_happened" not in log and b"MARKER" not in log


GARBAGE: list[tuple[str, bytes]] = [
    ("application/json", b"{"),
    ("application/json", b'{"envelope": {"v": 1, "body": "%%%"}, "mailbox": 7}'),
    ("application/json", b"[" * 5000),
    ("application/x-www-form-urlencoded", b"code=%ff%fe&what_happened=\x00\x01"),
    (
        "multipart/form-data; boundary=zz",
        b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\nabc',
    ),  # cut off before its end
    ("multipart/form-data", b"no boundary at all"),
    ("text/plain", random.Random(3).randbytes(5000)),
    ("application/octet-stream", b""),
]


def test_garbage_through_gunicorn_never_breaks_the_portal(hard: LivePortal) -> None:
    forms, api = post_routes()
    routes = [*forms, *api, "/api/uploads/abc/parts/0"]
    before = [_count(hard, t) for t in ("mailboxes", "envelopes", "replies")]
    s = Session(hard.url)
    s.get("/case")
    for path in routes:
        for content_type, body in GARBAGE:
            for with_token in (True, False):
                headers = {"Content-Type": content_type}
                if with_token:
                    headers["X-CSRFToken"] = s.token
                method = "PUT" if path.endswith("/parts/0") else "POST"
                resp = s.request(method, path, body, headers)
                assert resp.status < 500, (path, content_type, resp.status)
                if path not in NO_BODY_ROUTES:
                    assert resp.status >= 400, (path, content_type, resp.status)
    assert [_count(hard, t) for t in ("mailboxes", "envelopes", "replies")] == before
    _consistent(hard)
