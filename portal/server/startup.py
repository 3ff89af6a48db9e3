"""Things done once per data dir before serving: keys, demo desk, schema.

Several gunicorn workers start at once, so each step runs under a file lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from portal.common.atomic import atomic_write
from portal.desk import keystore
from portal.protocol.organization import (
    Organization,
    OrganizationError,
    UnsupportedDerivation,
    load,
)
from portal.server import schema
from portal.server.config import Config

log = logging.getLogger(__name__)
DEMO_PASSPHRASE = "demo"  # noqa: S105 - the documented demo passphrase


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(data_dir / ".startup.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Secrets:
    """Unrelated random keys kept in the data dir (none can make a session).

    ``csrf`` signs CSRF tokens (whose raw half lives in the server-side
    session); ``totp`` seals relay staff's TOTP secrets in the database;
    ``pow`` tags the proof-of-work challenges the portal issues.
    """

    csrf: bytes = field(repr=False)
    totp: bytes = field(repr=False)
    pow: bytes = field(repr=False)


def _key_file(path: Path) -> bytes:
    if not path.exists():
        atomic_write(path, secrets.token_bytes(32))
    return path.read_bytes()


def load_secrets(data_dir: Path) -> Secrets:
    """The data dir's keys, generated on first start."""
    return Secrets(
        csrf=_key_file(data_dir / "csrf.key"),
        totp=_key_file(data_dir / "totp.key"),
        pow=_key_file(data_dir / "pow.key"),
    )


def _demo_desk_usable(home: Path) -> bool:
    """Whether a demo desk's organization file names a derivation this portal speaks
    (a demo desk from before the move to PBKDF2 does not: it holds no real codes)."""
    try:
        load(home / keystore.ORG_FILE)
    except UnsupportedDerivation:
        return False
    except OrganizationError:
        return True  # another fault: let loading it say so
    return True


def organization(config: Config) -> Organization:
    """The organization's keys; in demo mode, a demo desk's if none are configured."""
    if config.demo and not config.keys_path.exists():
        home = config.demo_desk_home
        if (home / keystore.DESK_FILE).exists() and not _demo_desk_usable(home):
            retired = home.with_name(f"{home.name}.retired-{int(time.time())}")
            log.warning(
                "the demo desk in %s uses a code derivation this portal no longer supports: "
                "moved to %s and making a new one",
                home,
                retired,
            )
            home.rename(retired)
        if not (home / keystore.DESK_FILE).exists():
            log.warning(
                "no keys at %s: creating a DEMO desk in %s (passphrase %r)",
                config.keys_path,
                home,
                DEMO_PASSPHRASE,
            )
            keystore.init(
                home,
                DEMO_PASSPHRASE,
                "Demo organization (not for real reports)",
                cost="interactive",
                demo=True,
            )
        return load(home / keystore.ORG_FILE)
    return load(config.keys_path)


def prepare(config: Config) -> tuple[Organization, Secrets]:
    """Run every once-per-data-dir step; return the organization and the keys."""
    with data_dir_lock(config.data_dir):
        org = organization(config)
        keys = load_secrets(config.data_dir)
        schema.upgrade(config.database_url)
        config.blob_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.umask(0o077)
    return org, keys
