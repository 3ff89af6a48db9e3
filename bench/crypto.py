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

from nacl import pwhash

from portal.protocol.envelopes import seal
from portal.protocol.filecrypt import CHUNK, EncryptingWriter
from portal.protocol.organization import Organization
from portal.protocol.pow import Challenge, solve
from tests.harness.browsers import chromium, wait

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
        pwhash.argon2id.kdf(
            64, CODE.encode(), org.code_salt, opslimit=org.kdf.ops, memlimit=org.kdf.mem
        )
    derive_ms = (time.perf_counter() - start) * 1000 / 3
    data = os.urandom(file_mib * 1024 * 1024)
    start = time.perf_counter()
    writer = EncryptingWriter(io.BytesIO())
    for i in range(0, len(data), 16 * CHUNK):  # the browser's part size
        writer.write(data[i : i + 16 * CHUNK])
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


def browser(org: Organization, mode: str, file_mib: int, derivations: int) -> dict[str, Any]:
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
            with chromium(mode) as drv:
                drv.get(
                    f"http://127.0.0.1:{server.server_port}/index.html"
                    f"?mib={file_mib}&derivations={derivations}"
                )
                wait(drv, 900).until(lambda d: d.title == "done")
                result: dict[str, Any] = drv.execute_script("return window.benchResult")
        finally:
            server.shutdown()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


def run(org: Organization, file_mib: int = 64) -> dict[str, Any]:
    return {
        "native": native(org, file_mib),
        "wasm": browser(org, "js", file_mib, derivations=3),
        "jitless": browser(org, "jitless", file_mib, derivations=1),
    }


def report(r: dict[str, Any]) -> list[str]:
    nat = r["native"]
    mib = nat["file_mib"]
    lines = [
        f"{'browser crypto':<34}{'native':>10}{'wasm':>10}{'ratio':>8}{'no JIT':>10}{'ratio':>8}"
    ]
    rows = [
        ("seal a 2 KB report (ms)", "seal_ms"),
        ("derive a code, Argon2id (ms)", "derive_ms"),
        (f"encrypt a {mib} MiB file (ms)", "file_ms"),
        ("proof of work, 8 bits (ms, mean)", "pow_ms"),
    ]
    for label, key in rows:
        a, b, c = nat[key], r["wasm"][key], r["jitless"][key]
        lines.append(f"{label:<34}{a:>10.1f}{b:>10.1f}{a / b:>8.2f}{c:>10.1f}{a / c:>8.2f}")
    for name in ("native", "wasm", "jitless"):
        ms = r[name]["file_ms"]
        lines.append(f"  file throughput {name:<8} {mib / (ms / 1000):>8.1f} MiB/s")
    lines.append(
        "  ratio = native time / browser time (1.0 = native speed; target for wasm: >= 0.5)"
    )
    return lines
