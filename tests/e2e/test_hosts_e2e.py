"""Two portal hosts behind one address: real gunicorns with data dirs of their own,
one real PostgreSQL database and one shared blob directory (docs/deployment.md).

What a reporter starts on one host continues on the other: a report opens there,
a case opened on one is confirmed and written to on the other, an upload started
on one resumes on the other; and the work gate's slots bound both hosts together.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from portal.protocol import codes
from portal.server.web.work_gate import ADVISORY_SPACE
from tests.harness.http import Session
from tests.harness.live import LivePortal, fresh_desk_copy, live_portal
from tests.harness.loop import CODE_ON_PAGE, NEW_CODE_ON_PAGE, ROTATION, TAG
from tests.harness.postgres import Cluster, cluster
from tests.harness.web import PASSPHRASE


@dataclass
class Hosts:
    a: LivePortal
    b: LivePortal
    database: Cluster
    url: str
    blobs: Path


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, desk_home: Path) -> Iterator[Hosts]:
    base = tmp_path_factory.mktemp("hosts")
    with cluster() as server:
        url = server.new_database("hosts")
        shared = {
            "PORTAL_DATABASE_URL": url,
            "PORTAL_BLOB_DIR": str(base / "shared-blobs"),
            "PORTAL_DERIVE_SLOTS": "1",  # one derivation at a time, for both hosts together
        }
        keys = desk_home / "organization.json"
        with (
            live_portal(base / "a", keys, workers=1, extra_env=shared) as a,
            live_portal(base / "b", keys, workers=1, extra_env=shared) as b,
        ):
            yield Hosts(a, b, server, url, base / "shared-blobs")


def _on(session: Session, host: LivePortal) -> Session:
    """The same browser (the same cookies), its next request answered by ``host``."""
    session.base = host.url
    return session


def _send_report(session: Session, text: str) -> str:
    session.get("/report")
    page = session.form("/report", {"what_happened": text})
    assert page.status == 200, page.text[:300]
    found = CODE_ON_PAGE.search(page.text)
    assert found, page.text[:500]
    return codes.normalise(TAG.sub("", found.group(1)))


def test_both_hosts_store_in_the_one_postgresql_database(hosts: Hosts) -> None:
    """The run really uses PostgreSQL, and neither host kept a database of its own."""
    assert hosts.url.startswith("postgresql+psycopg://")
    _send_report(Session(hosts.a.url), "MARKER-hosts-pg")
    with psycopg.connect(hosts.url.replace("postgresql+psycopg", "postgresql")) as conn:
        (version,) = conn.execute("SELECT version()").fetchone() or ("",)
        (reports,) = conn.execute("SELECT count(*) FROM mailboxes").fetchone() or (0,)
    assert "PostgreSQL" in version and reports >= 1
    for host in (hosts.a, hosts.b):
        assert not list(host.data_dir.glob("*.sqlite"))
        assert not (host.data_dir / "blobs").exists()


def test_a_report_sent_to_one_host_opens_and_continues_on_the_other(
    hosts: Hosts, desk_home: Path, tmp_path: Path
) -> None:
    browser = Session(hosts.a.url)
    code = _send_report(browser, "MARKER-hosts-report from host A")
    # Opened on B; the new code it gives is confirmed on A; a message is sent on B.
    _on(browser, hosts.b).get("/case")
    opened = browser.form("/case", {"code": code})
    assert opened.status == 200 and "MARKER-hosts-report" not in opened.text
    new_code, rotation = NEW_CODE_ON_PAGE.search(opened.text), ROTATION.search(opened.text)
    assert new_code and rotation
    digits = codes.normalise(TAG.sub("", new_code.group(1)))
    _on(browser, hosts.a)
    confirmed = browser.form(
        "/case/confirm", {"rotation": rotation.group(1), "last_group": digits[-4:]}
    )
    assert confirmed.status == 200 and 'id="confirmed-notice"' in confirmed.text
    _on(browser, hosts.b).get("/case")
    sent = browser.form("/case/message", {"message": "MARKER-hosts-message from host B"})
    assert sent.status == 200, sent.text[:300]
    # The desk reads both from one inbox, made by either host.
    bundle = tmp_path / "inbox.tar"
    assert hosts.b.portal("export-inbox", str(bundle)).returncode == 0
    home = fresh_desk_copy(desk_home, tmp_path / "desk")
    env = {"PORTAL_DESK_PASSPHRASE": PASSPHRASE}
    assert (
        hosts.a.portal("desk", "import", "--home", str(home), str(bundle), env=env).returncode == 0
    )
    listed = json.loads(
        hosts.a.portal("desk", "cases", "--home", str(home), "--json", env=env).stdout
    )
    texts = []
    for case in listed:
        shown = hosts.a.portal("desk", "show", case["case"], "--home", str(home), "--json", env=env)
        texts += [json.dumps(i["content"]) for i in json.loads(shown.stdout)["items"]]
    joined = "\n".join(texts)
    assert "MARKER-hosts-report from host A" in joined
    assert "MARKER-hosts-message from host B" in joined
    # The old code is spent everywhere: it opens nothing on either host.
    for host in (hosts.a, hosts.b):
        stranger = Session(host.url)
        stranger.get("/case")
        assert "MARKER" not in stranger.form("/case", {"code": code}).text


def test_an_upload_started_on_one_host_resumes_on_the_other(hosts: Hosts) -> None:
    browser = Session(hosts.a.url)
    browser.get("/report")
    part = 64 * 1024
    blob = bytes(range(256)) * (3 * part // 256)
    started = browser.paid("/api/uploads", {"size": len(blob), "part_size": part})
    assert started.status == 201, started.text
    upload = started.json()["upload"]
    assert browser.api("PUT", f"/api/uploads/{upload}/parts/0", raw=blob[:part]).status == 200
    # Host A goes away mid-upload (the front sends the rest to B).
    _on(browser, hosts.b)
    assert browser.api("GET", f"/api/uploads/{upload}").json()["received"] == 1
    for n in (1, 2):
        put = browser.api(
            "PUT", f"/api/uploads/{upload}/parts/{n}", raw=blob[n * part : (n + 1) * part]
        )
        assert put.status == 200, put.text
    assert browser.api("GET", f"/api/uploads/{upload}").json()["received"] == 3
    kept = [p for p in hosts.blobs.rglob("*") if p.is_file() and p.read_bytes() == blob]
    assert len(kept) == 1


def test_the_work_gate_bounds_both_hosts_together(hosts: Hosts) -> None:
    """Six no-JavaScript reports at once, three to each host, with one slot between
    them: PostgreSQL never holds more than one slot lock, and all six are served."""
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        with psycopg.connect(hosts.url.replace("postgresql+psycopg", "postgresql")) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = %s AND granted",
                    (ADVISORY_SPACE,),
                ).fetchone()
                seen.append(int(row[0]) if row else 0)
                time.sleep(0.001)

    statuses: list[int] = []

    def report(host: LivePortal, n: int) -> None:
        browser = Session(host.url)
        browser.get("/report")
        statuses.append(browser.form("/report", {"what_happened": f"flood {n}"}).status)

    watcher = threading.Thread(target=watch)
    watcher.start()
    senders = [
        threading.Thread(target=report, args=(host, n))
        for n in range(3)
        for host in (hosts.a, hosts.b)
    ]
    for t in senders:
        t.start()
    for t in senders:
        t.join(60)
    stop.set()
    watcher.join(10)
    assert statuses == [200] * 6
    assert max(seen) == 1, f"slots held at once: {max(seen)}"
