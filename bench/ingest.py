"""Upload ingest: a 1 GiB file in parts through the portal, against a raw
loopback copy of the same bytes to the same disk; and the server's memory."""

from __future__ import annotations

import http.client
import os
import socket
import socketserver
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.harness.http import Session

PART = 8 * 1024 * 1024


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


class _Sampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pids))
            time.sleep(0.05)


def portal_upload(url: str, size: int, worker_pids: list[int]) -> dict[str, float]:
    s = Session(url)
    s.get("/report")
    start = s.paid("/api/uploads", {"size": size, "part_size": PART}).json()
    block = os.urandom(PART)
    parsed = urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    cookie = "; ".join(f"{c.name}={c.value}" for c in s.jar)
    base = rss_kib(worker_pids)
    sampler = _Sampler(worker_pids)
    sampler.start()
    began = time.perf_counter()
    for n in range(start["parts"]):
        body = block[: min(PART, size - n * PART)]
        conn.request(
            "PUT",
            f"/api/uploads/{start['upload']}/parts/{n}",
            body=body,
            headers={
                "Content-Type": "application/octet-stream",
                "X-CSRFToken": s.token,
                "Cookie": cookie,
            },
        )
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"part {n}: {resp.status}")
    elapsed = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    return {
        "seconds": elapsed,
        "mb_s": size / 1e6 / elapsed,
        "rss_base_mb": base / 1024,
        "rss_growth_mb": (sampler.peak - base) / 1024,
    }


def raw_copy(folder: Path, size: int) -> dict[str, float]:
    """The same bytes over a loopback socket into a file on the same disk, then fsync."""
    target = folder / "raw-copy.bin"

    class Receive(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            with open(target, "wb") as out:
                remaining = size
                while remaining:
                    chunk = self.rfile.read(min(1 << 20, remaining))
                    if not chunk:
                        break
                    out.write(chunk)
                    remaining -= len(chunk)
                out.flush()
                os.fsync(out.fileno())
            self.wfile.write(b"ok")

    server = socketserver.TCPServer(("127.0.0.1", 0), Receive)
    threading.Thread(target=server.handle_request, daemon=True).start()
    block = os.urandom(PART)
    began = time.perf_counter()
    with socket.create_connection(server.server_address) as sock:
        sent = 0
        while sent < size:
            piece = block[: min(PART, size - sent)]
            sock.sendall(piece)
            sent += len(piece)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(2)
    elapsed = time.perf_counter() - began
    server.server_close()
    target.unlink()
    return {"seconds": elapsed, "mb_s": size / 1e6 / elapsed}


def report(portal: dict[str, float], raw: dict[str, float], size: int) -> list[str]:
    return [
        f"{'upload ingest':<34}{'MB/s':>9}{'seconds':>9}",
        f"{'portal, ' + str(size >> 20) + ' MiB in 8 MiB parts':<34}{portal['mb_s']:>9.1f}"
        f"{portal['seconds']:>9.1f}",
        f"{'raw loopback copy, same disk':<34}{raw['mb_s']:>9.1f}{raw['seconds']:>9.1f}",
        f"  ratio portal / raw: {portal['mb_s'] / raw['mb_s']:.2f} (target >= 0.5)",
        f"  server memory: {portal['rss_base_mb']:.0f} MB before, grew by "
        f"{portal['rss_growth_mb']:.1f} MB at the peak (target < 50 MB)",
    ]
