"""A throwaway PostgreSQL server for the tests: Debian's own binaries, a cluster
in a temp dir, listening on 127.0.0.1 only, removed afterwards.

PostgreSQL will not run as root, so as root (CI) the cluster belongs to the
``postgres`` user the Debian package creates. Durability settings are relaxed
(``fsync=off``): no test can pull the power, and a test cluster is thrown away.
For the same reason the cluster lives in memory (``/dev/shm``) when there is room:
every test that stores copies a database of its own, 7.5 MiB and 360 files, and on
disk the 170th copy took 250 ms where the first took 60, and removing them at the
end took 5 to 20 s; in memory, 60 ms each and about a second.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.live import free_port

_counter = itertools.count(1)
IN_MEMORY = Path("/dev/shm")
IN_MEMORY_ROOM = 6 << 30  # free bytes it must have: a test process's copies hold 1.3 GiB of RAM


def _cluster_parent() -> str | None:
    """Where the cluster's temp dir goes: memory if it has room, else the usual temp dir."""
    try:
        stats = os.statvfs(IN_MEMORY)
    except OSError:
        return None
    return str(IN_MEMORY) if stats.f_bavail * stats.f_frsize >= IN_MEMORY_ROOM else None


def server_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (make test installs one)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make test`, which installs it")
    return found[-1].parent


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Cluster:
    port: int
    folder: Path
    made: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://portal@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh database's URL, copied from one the portal's migrations made once
        (the portal still runs them on start: they find nothing left to do)."""
        if not self.made:
            from portal.server import schema

            self.psql('CREATE DATABASE "migrated"')
            schema.upgrade(self.url("migrated"))
            self.made.append("migrated")
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "migrated"')
        self.made.append(name)
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [str(server_bin() / "psql"), "-X", "-q", "-A", "-t", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", "portal", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return out.stdout.strip()


@contextmanager
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="portal-pg-", dir=_cluster_parent()))
    data, log = folder / "data", folder / "server.log"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    binaries = server_bin()
    subprocess.run(
        _as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "portal", "-A", "trust",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                   "-w", "-t", "60", "start"]),
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    try:
        yield Cluster(port, folder)
    finally:
        subprocess.run(
            _as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-W", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
