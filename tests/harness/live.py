"""A real gunicorn serving the portal on 127.0.0.1, for browser and HTTP tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.harness.web import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LivePortal:
    url: str  # the public listener
    relay_url: str  # the relay's own listener
    data_dir: Path
    tmp_dir: Path
    log_path: Path
    env: dict[str, str]
    pid: int = 0  # gunicorn's master

    def workers(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]

    def kill_workers(self) -> None:
        """SIGKILL every worker; the master starts new ones."""
        for pid in self.workers():
            os.kill(pid, signal.SIGKILL)
        wait_until_up(self.url, None)

    def portal(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``portal`` console script against this portal's configuration."""
        return subprocess.run(
            [str(BIN / "portal"), *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def command(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``portal *args`` as :meth:`portal` runs it, but in this process, through
        click's runner: the same commands, without a Python start and the imports
        each time (1.8 s of CPU a command here, and a browser run makes over a
        hundred). For as long as it runs, the command sees what :meth:`portal`
        gives a process: this portal's environment and no other ``PORTAL_`` or
        ``FLASK_`` variable, ``ROOT`` as its directory, the portal's temp dir; the
        umask a portal command sets is put back after it. Unlike a process, it has
        no timeout, and the app a portal command makes stays open until collected
        (with an entry of the portal's work-gate line, of 64, for this process)."""
        from click.testing import CliRunner

        from portal.cli import main

        given = {**self.env, **(env or {})}
        unset: dict[str, str | None] = {
            k: None for k in os.environ if k.startswith(("PORTAL_", "FLASK_"))
        }
        umask = os.umask(0o077)
        os.umask(umask)
        temp = tempfile.tempdir
        tempfile.tempdir = given.get("TMPDIR", temp)
        try:
            with contextlib.chdir(ROOT):
                ran = CliRunner().invoke(
                    main, list(args), env={**unset, "FLASK_RUN_FROM_CLI": None, **given}
                )
        finally:
            tempfile.tempdir = temp
            os.umask(umask)
        stderr = ran.stderr
        if ran.exc_info is not None and not isinstance(ran.exception, SystemExit):
            stderr += "".join(traceback.format_exception(*ran.exc_info))
        return subprocess.CompletedProcess(["portal", *args], ran.exit_code, ran.stdout, stderr)

    def desk_case(self, home: Path, marker: str, env: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """The one case on the desk at ``home`` whose texts hold ``marker``, and
        what ``desk show --json`` prints of it. Found with the desk's own search:
        two commands, where showing every case took one per report the module's
        portal had stored."""
        found = self.command("desk", "search", marker, "--home", str(home), "--json", env=env)
        assert found.returncode == 0, found.stderr
        cases = {hit["case"] for hit in json.loads(found.stdout)}
        assert len(cases) == 1, f"{len(cases)} cases on the desk hold {marker!r}"
        (case,) = cases
        shown = self.command("desk", "show", case, "--home", str(home), "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        return case, dict(json.loads(shown.stdout))


DESK_ENV = {"PORTAL_DESK_PASSPHRASE": PASSPHRASE}  # what opens the tests' desks


def cli(live: LivePortal, *args: str) -> str:
    """What ``portal *args`` printed (run as :meth:`LivePortal.command` runs it,
    with the tests' desk passphrase), once it has succeeded."""
    out = live.command(*args, env=DESK_ENV)
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait_until_up(url: str, proc: subprocess.Popen[bytes] | None, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up in time")


@contextmanager
def _gunicorn(app: str, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def live_portal(
    base: Path, keys: Path, workers: int = 2, extra_env: dict[str, str] | None = None
) -> Iterator[LivePortal]:
    """Start gunicorn exactly as operators do: ``gunicorn 'portal:create_app()'`` on
    the public listener, and ``gunicorn 'portal:create_relay_app()'`` on its own."""
    data_dir, tmp_dir = base / "data", base / "tmp"
    tmp_dir.mkdir(parents=True)
    port, relay_port = free_port(), free_port()
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(base)),
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_KEYS": str(keys),
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_WORKERS": str(workers),
        "TMPDIR": str(tmp_dir),
        **(extra_env or {}),
    }
    relay_env = {**env, "PORTAL_BIND": f"127.0.0.1:{relay_port}", "PORTAL_WORKERS": "1"}
    log_path = base / "gunicorn.log"
    url, relay_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{relay_port}"
    with _gunicorn("portal:create_app()", env, log_path) as proc:
        wait_until_up(url, proc)
        with _gunicorn("portal:create_relay_app()", relay_env, base / "relay.log") as relay:
            wait_until_up(relay_url + "/staff", relay)
            yield LivePortal(
                url=url,
                relay_url=relay_url,
                data_dir=data_dir,
                tmp_dir=tmp_dir,
                log_path=log_path,
                env=env,
                pid=proc.pid,
            )


def fresh_desk_copy(desk_home: Path, target: Path) -> Path:
    """A new desk home holding the same keys and nothing imported."""
    target.mkdir(parents=True)
    for name in ("desk.json", "organization.json"):
        shutil.copy2(desk_home / name, target / name)
    return target


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A small HTTP server of the test's own on 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
