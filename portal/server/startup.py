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

from sqlalchemy.exc import IntegrityError

from portal.common.atomic import atomic_write
from portal.common.db import Database
from portal.desk import keystore
from portal.protocol.organization import (
    Organization,
    OrganizationError,
    UnsupportedDerivation,
    load,
)
from portal.server import schema
from portal.server.config import Config
from portal.server.models import ServerKey

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
    """Unrelated random keys (none can make a session).

    ``csrf`` signs CSRF tokens (whose raw half lives in the server-side
    session) and ``pow`` tags the proof-of-work challenges the portal issues:
    both live in the database, so every host behind one address checks what
    another made. ``totp`` seals relay staff's TOTP secrets in the database, so
    it stays out of it, in the data dir of the host that runs the relay.
    """

    csrf: bytes = field(repr=False)
    totp: bytes = field(repr=False)
    pow: bytes = field(repr=False)


def _key_file(path: Path) -> bytes:
    if not path.exists():
        atomic_write(path, secrets.token_bytes(32))
    return path.read_bytes()


def _shared_key(db: Database, name: str, data_dir: Path) -> bytes:
    """A key from the database; the first host to start makes it (taking over the
    data dir's file from before keys were shared, so nothing made with it breaks)."""
    old = data_dir / f"{name}.key"
    fresh = old.read_bytes() if old.exists() else secrets.token_bytes(32)
    try:
        with db.transaction() as s:
            if s.get(ServerKey, name) is None:
                s.add(ServerKey(name=name, value=fresh))
    except IntegrityError:
        pass  # another host or worker made it first: theirs is the key
    with db.reading() as s:
        row = s.get(ServerKey, name)
        assert row is not None
        return bytes(row.value)


def load_secrets(data_dir: Path, database_url: str) -> Secrets:
    """The portal's keys, generated on first start."""
    db = Database(database_url)
    try:
        return Secrets(
            csrf=_shared_key(db, "csrf", data_dir),
            totp=_key_file(data_dir / "totp.key"),
            pow=_shared_key(db, "pow", data_dir),
        )
    finally:
        db.engine.dispose()


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
        schema.upgrade(config.database_url)
        keys = load_secrets(config.data_dir, config.database_url)
        config.blob_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.umask(0o077)
    return org, keys
