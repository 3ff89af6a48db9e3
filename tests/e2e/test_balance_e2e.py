"""Connections shared out between gunicorn's workers (portal/server/balance.py),
on a real gunicorn with two workers: a burst of kept-alive connections lands
evenly, and a worker that stops answering is left out, not waited for."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from portal.server.balance import STALE_AFTER
from tests.harness.live import LivePortal, live_portal

# Where connections land depends on the workers' pace: runs alone (Makefile).
pytestmark = pytest.mark.alone


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, desk_home: Path) -> Iterator[LivePortal]:
    with live_portal(
        tmp_path_factory.mktemp("pair"),
        desk_home / "organization.json",
        workers=2,  # kept alive long enough to be counted on a slow machine:
        extra_env={"GUNICORN_CMD_ARGS": "--keep-alive 30"},
    ) as portal:
        yield portal


def _kept_alive(live: LivePortal) -> socket.socket:
    """A connection that has been answered once and stays open."""
    url = urlsplit(live.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=15)
    sock.sendall(f"GET /api/ping HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before its answer"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    return sock


def _burst(live: LivePortal, n: int, stack: ExitStack) -> None:
    """``n`` connections opened at once, each answered, all kept open."""
    socks: list[socket.socket] = []
    lock = threading.Lock()

    def one() -> None:
        sock = _kept_alive(live)
        with lock:
            socks.append(stack.enter_context(sock))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(socks) == n


def _held(live: LivePortal) -> dict[int, int]:
    """How many open connections each worker holds (from /proc, as ``ss`` reads it)."""
    port = urlsplit(live.url).port
    established = set()
    with open("/proc/net/tcp") as table:
        for row in list(table)[1:]:
            fields = row.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                established.add(f"socket:[{fields[9]}]")
    held = {}
    for pid in live.workers():
        fds = Path(f"/proc/{pid}/fd")
        held[pid] = sum(1 for fd in fds.iterdir() if _link(fd) in established)
    return held


def _link(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""


def test_a_burst_of_kept_alive_connections_is_shared_evenly(pair: LivePortal) -> None:
    """Plain gthread let one worker take 24 of 32 connections opened together
    (measured), so its clients waited three times as long as the other's."""
    for _ in range(2):  # twice: an even split by luck is unlikely to repeat
        with ExitStack() as stack:
            _burst(pair, 40, stack)
            held = _held(pair)
            assert len(held) == 2 and sum(held.values()) == 40, held
            assert max(held.values()) - min(held.values()) <= 2, held
        time.sleep(0.5)  # the workers see the connections closed


def test_a_worker_that_stops_answering_is_left_out(pair: LivePortal) -> None:
    """A hung worker must not keep new reporters waiting for its share: once it
    has been silent for STALE_AFTER seconds, the other takes every connection,
    well past one a thread (8), where it would otherwise hold back for it."""
    stopped, working = pair.workers()
    os.kill(stopped, signal.SIGSTOP)
    try:
        with ExitStack() as stack:
            started = time.monotonic()
            for _ in range(12):
                stack.enter_context(_kept_alive(pair))
            took = time.monotonic() - started
            held = _held(pair)
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert held[working] == 12 and held[stopped] == 0, held
    assert took < STALE_AFTER + 3, took
