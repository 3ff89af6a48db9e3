"""Browser crypto (libsodium.js in headless Chromium, with and without JIT and
WebAssembly) against PyNaCl (native libsodium) doing the same work."""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from portal.protocol import codes
from portal.protocol.envelopes import seal
from portal.protocol.filecrypt import CHUNK, EncryptingWriter
from portal.protocol.organization import Organization
from portal.protocol.pow import Challenge, solve
from tests.harness.drivers import browser as open_browser

ROOT = Path(__file__).resolve().parents[1]
CODE = "391822074471038599621548"
POW_ROUNDS = 16


def native(org: Organization, file_mib: int) -> dict[str, float]:
    report = os.urandom(2000)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.5 or n < 10:
        seal("report", report, org.encrypt, "browser")
        n += 1
    seal_ms = (time.perf_counter() - start) * 1000 / n
    start = time.perf_counter()
    for _ in range(3):
        codes.derive(CODE, org.code_salt, org.kdf)
    derive_ms = (time.perf_counter() - start) * 1000 / 3
    data = os.urandom(file_mib * 1024 * 1024)
    start = time.perf_counter()
    writer = EncryptingWriter(io.BytesIO())
    for i in range(0, len(data), 4 * CHUNK):  # the browser's part size
        writer.write(data[i : i + 4 * CHUNK])
    writer.finish()
    file_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for _ in range(POW_ROUNDS):
        solve(Challenge(os.urandom(16), 8, 1000))
    pow_ms = (time.perf_counter() - start) * 1000 / POW_ROUNDS
    return {
        "seal_ms": seal_ms,
        "derive_ms": derive_ms,
        "file_ms": file_ms,
        "file_mib": file_mib,
        "pow_ms": pow_ms,
    }


def browser(
    org: Organization, name: str, level: str, file_mib: int, derivations: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["node", "bench/browser/build.mjs", tmp], cwd=ROOT, check=True)
        (Path(tmp) / "organization.json").write_text(json.dumps(org.to_json()))
        (Path(tmp) / "index.html").write_text(
            '<!doctype html><title>bench</title><script src="page.js"></script>'
        )
        handler = functools.partial(_QuietHandler, directory=tmp)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with open_browser(name, level) as drv:
                drv.get(
                    f"http://127.0.0.1:{server.server_port}/index.html"
                    f"?mib={file_mib}&derivations={derivations}"
                )
                deadline = time.monotonic() + 900
                while drv.title != "done" and time.monotonic() < deadline:
                    time.sleep(0.2)
                result: dict[str, Any] = drv.execute_script("return window.benchResult")
        finally:
            server.shutdown()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


# The browsers and levels measured: Chromium with and without JIT, and Firefox ESR
# (Tor Browser's engine) at Tor Browser's Standard and Safer preferences.
BROWSERS = (
    ("chromium", "js", "Chromium"),
    ("chromium", "jitless", "Chromium no JIT"),
    ("firefox", "standard", "Firefox Standard"),
    ("firefox", "safer", "Firefox Safer"),
)


def run(org: Organization, file_mib: int = 64) -> dict[str, Any]:
    out: dict[str, Any] = {"native": native(org, file_mib)}
    for name, level, label in BROWSERS:
        out[label] = browser(org, name, level, file_mib, derivations=3)
    return out


def report(r: dict[str, Any]) -> list[str]:
    nat = r["native"]
    mib = nat["file_mib"]
    labels = [label for _, _, label in BROWSERS]
    lines = [f"{'browser crypto (ms; ratio = native / browser)':<44}{'native':>9}"]
    lines[0] += "".join(f"{label:>20}" for label in labels)
    rows = [
        ("seal a 2 KB report", "seal_ms"),
        ("derive a code (PBKDF2)", "derive_ms"),
        (f"encrypt a {mib} MiB file", "file_ms"),
        ("proof of work, 8 bits (mean)", "pow_ms"),
    ]
    for text, key in rows:
        line = f"{text:<44}{nat[key]:>9.1f}"
        for label in labels:
            ms = r[label][key]
            line += f"{ms:>11.1f} ({nat[key] / ms:>5.2f})"
        lines.append(line)
    line = f"{'file throughput (MiB/s)':<44}{mib / (nat['file_ms'] / 1000):>9.1f}"
    for label in labels:
        line += f"{mib / (r[label]['file_ms'] / 1000):>20.1f}"
    lines.append(line)
    lines.append("  targets: file encryption >= 50 MiB/s at Safer; >= 0.5x native at Standard")
    return lines
