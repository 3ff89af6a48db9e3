"""Simulated reporters doing what the browser does (PyNaCl for libsodium.js)."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field

from portal.protocol import codes
from portal.protocol.encoding import b64encode
from portal.protocol.filecrypt import EncryptingWriter
from portal.protocol.organization import Organization
from tests.harness.http import Session
from tests.harness.sealing import browser_style_request


@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)


def timed(t: Timings, name: str, call: object) -> object:
    start = time.perf_counter()
    result = call()  # type: ignore[operator]
    t.add(name, time.perf_counter() - start)
    return result


def submit(s: Session, org: Organization, t: Timings, text: str, files: int = 0) -> str:
    """One browser-style report (optionally with files); returns its code."""
    s.get("/report")
    ids, entries = [], []
    for n in range(files):
        out = io.BytesIO()
        w = EncryptingWriter(out)
        w.write(f"file {n} of {text}".encode() * 2000)
        w.finish()
        blob = out.getvalue()
        part = 16 * 1024
        start = s.paid("/api/uploads", {"size": len(blob), "part_size": part})
        if start.status != 201:
            t.errors.append(f"upload start {start.status}")
            continue
        upload = start.json()["upload"]
        for i in range(start.json()["parts"]):
            began = time.perf_counter()
            r = s.api(
                "PUT", f"/api/uploads/{upload}/parts/{i}", raw=blob[i * part : (i + 1) * part]
            )
            t.add("upload part", time.perf_counter() - began)
            if r.status != 200:
                t.errors.append(f"part {r.status}")
        ids.append(upload)
        entries.append(
            {
                "upload": upload,
                "name": f"f{n}",
                "type": "text/plain",
                "size": w.size,
                **w.finish().entry(),
                "metadata_removed": False,
            }
        )
    code, body = browser_style_request(org, text, attachments=entries)
    if ids:
        body["attachments"] = ids
    resp = timed(t, "submit", lambda: s.paid("/api/reports", body))
    if resp.status != 201:  # type: ignore[attr-defined]
        t.errors.append(f"submit {resp.status} {resp.text[:80]}")  # type: ignore[attr-defined]
    return code


def open_case(s: Session, org: Organization, t: Timings, code: str) -> bool:
    s.get("/case")
    lookup = b64encode(codes.derive(code, org.code_salt, org.kdf).lookup)
    resp = timed(t, "open case", lambda: s.api("POST", "/api/case/open", {"lookup": lookup}))
    if resp.status != 200:  # type: ignore[attr-defined]
        t.errors.append(f"open {resp.status}")  # type: ignore[attr-defined]
        return False
    return True


def run_load(url: str, org: Organization, seconds: float, clients: int) -> Timings:
    timings = Timings()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def reporter(n: int) -> None:
        local = Timings()
        i = 0
        while time.monotonic() < deadline:
            try:
                s = Session(url)
                code = submit(s, org, local, f"load {n}-{i}", files=1 if i % 2 else 0)
                open_case(Session(url), org, local, code)
            except Exception as exc:
                local.errors.append(f"{type(exc).__name__}: {exc}")
            i += 1
        with lock:
            for name, values in local.samples.items():
                timings.samples.setdefault(name, []).extend(values)
            timings.errors.extend(local.errors)

    threads = [threading.Thread(target=reporter, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings
