"""Portal configuration: a frozen dataclass read from the environment.

``load_config(environ)`` takes any mapping, so tests build configurations
without touching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from portal.common.errors import NamedError

MiB = 1024 * 1024


class ConfigError(NamedError, ValueError):
    """An environment variable holds a value the portal cannot use."""

    REASON = "config"


@dataclass(frozen=True)
class Config:
    """Everything the portal needs to know about its deployment."""

    data_dir: Path
    keys_path: Path
    database_url: str
    demo: bool = False
    tls: bool = False
    onion_address: str | None = None
    onion_notice: bool = False  # tell readers who did not come through the onion address
    branding_dir: Path | None = None
    max_envelope_bytes: int = 1 * MiB
    max_request_bytes: int = 2 * MiB
    quick_exit_url: str = "https://www.wikipedia.org/"
    ack_grace_days: int = 7
    case_idle_seconds: int = 600
    staff_idle_seconds: int = 1800
    max_outbox_bytes: int = 256 * MiB
    max_file_bytes: int = 2048 * MiB
    max_files: int = 20
    max_report_bytes: int = 4096 * MiB
    upload_quota_bytes: int = 100 * 1024 * MiB
    upload_expiry_days: int = 1
    derive_slots: int = 2
    # Derivations per second per worker, sustained (a burst beyond waits its turn):
    # at about 10 ms each, half a core per worker.
    derive_rate: int = 50
    mailbox_retention_days: int = 365
    session_lifetime_seconds: int = 4 * 3600
    pow_bits: int = 8  # about 256 native PBKDF2 guesses: well under a second at Safer
    pow_max_bits: int = 16
    pow_iterations: int = 1000
    pow_rate: int = 30  # solutions a minute per worker before the difficulty rises
    pending_per_case: int = 200  # follow-ups of one case waiting for the desk, at most
    inbox_items: int = 20_000  # items in one inbox bundle; the rest wait for the next
    transparency_min: int = 5  # /transparency withholds any count under this
    shared_blob_dir: Path | None = None  # PORTAL_BLOB_DIR: one folder every host mounts

    @property
    def blob_dir(self) -> Path:
        """Encrypted envelopes, files and upload parts: shared by every host of one
        portal (``PORTAL_BLOB_DIR``), else in this host's data dir."""
        return self.shared_blob_dir or self.data_dir / "blobs"

    @property
    def questionnaires_dir(self) -> Path | None:
        """The organization's questionnaires (the shipped default when absent)."""
        return self.branding_dir / "questionnaires" if self.branding_dir else None

    @property
    def demo_desk_home(self) -> Path:
        return self.data_dir / "demo-desk"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _size(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number of bytes, not {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number that may be zero."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _outside_url(environ: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) address with nothing a header could not carry (Quick exit's
    redirect must never fail on a stray newline from an env file)."""
    raw = environ.get(name) or default
    if not raw.startswith(("https://", "http://")) or any(c <= " " or c == "\x7f" for c in raw):
        raise ConfigError(f"{name} must be an http(s) address without spaces, not {raw!r}")
    return raw


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read ``PORTAL_*`` variables, with safe defaults for everything."""
    env = os.environ if environ is None else environ
    if env.get("PORTAL_STAFF_HOST"):
        raise ConfigError(
            "PORTAL_STAFF_HOST is no longer used: the relay is its own app on its own "
            "listener (gunicorn 'portal:create_relay_app()'); see docs/deployment.md"
        )
    data_dir = Path(env.get("PORTAL_DATA_DIR") or "instance").resolve()
    keys_path = Path(env.get("PORTAL_KEYS") or "keys/organization.json").resolve()
    database_url = env.get("PORTAL_DATABASE_URL") or f"sqlite:///{data_dir / 'portal.sqlite'}"
    max_envelope = _size(env, "PORTAL_MAX_ENVELOPE_BYTES", 1 * MiB)
    return Config(
        data_dir=data_dir,
        keys_path=keys_path,
        database_url=database_url,
        demo=_flag(env.get("PORTAL_DEMO")),
        tls=_flag(env.get("PORTAL_TLS")),
        onion_address=env.get("PORTAL_ONION_ADDRESS") or None,
        onion_notice=_flag(env.get("PORTAL_ONION_NOTICE")),
        branding_dir=Path(env.get("PORTAL_BRANDING") or "keys/branding").resolve(),
        max_envelope_bytes=max_envelope,
        max_request_bytes=_size(env, "PORTAL_MAX_REQUEST_BYTES", max_envelope + MiB),
        quick_exit_url=_outside_url(env, "PORTAL_QUICK_EXIT_URL", "https://www.wikipedia.org/"),
        ack_grace_days=_size(env, "PORTAL_ACK_GRACE_DAYS", 7),
        case_idle_seconds=_size(env, "PORTAL_CASE_IDLE_SECONDS", 600),
        max_outbox_bytes=_size(env, "PORTAL_MAX_OUTBOX_BYTES", 256 * MiB),
        max_file_bytes=_size(env, "PORTAL_MAX_FILE_BYTES", 2048 * MiB),
        max_files=_size(env, "PORTAL_MAX_FILES", 20),
        max_report_bytes=_size(env, "PORTAL_MAX_REPORT_BYTES", 4096 * MiB),
        upload_quota_bytes=_size(env, "PORTAL_UPLOAD_QUOTA_BYTES", 100 * 1024 * MiB),
        upload_expiry_days=_size(env, "PORTAL_UPLOAD_EXPIRY_DAYS", 1),
        derive_slots=_size(env, "PORTAL_DERIVE_SLOTS", os.cpu_count() or 2),
        derive_rate=_size(env, "PORTAL_DERIVE_RATE", Config.derive_rate),
        mailbox_retention_days=_size(env, "PORTAL_MAILBOX_RETENTION_DAYS", 365),
        transparency_min=max(2, _size(env, "PORTAL_TRANSPARENCY_MIN", 5)),
        pow_bits=_count(env, "PORTAL_POW_BITS", 8),
        pow_max_bits=_size(env, "PORTAL_POW_MAX_BITS", 16),
        pow_rate=_size(env, "PORTAL_POW_RATE", 30),
        pending_per_case=_size(env, "PORTAL_PENDING_PER_CASE", 200),
        inbox_items=_size(env, "PORTAL_INBOX_ITEMS", 20_000),
        shared_blob_dir=Path(env["PORTAL_BLOB_DIR"]).resolve()
        if env.get("PORTAL_BLOB_DIR")
        else None,
    )
