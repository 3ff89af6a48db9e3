"""Starting the portal: refusing bad keys clearly, demo keys with a banner."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from portal.protocol.organization import OrganizationError
from portal.server.app import create_app
from portal.server.config import ConfigError, load_config
from tests.harness.web import run_sql


def test_refuses_to_start_without_keys(tmp_path: Path) -> None:
    config = load_config(
        {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_KEYS": str(tmp_path / "none.json")}
    )
    with pytest.raises(OrganizationError, match="no organization key file"):
        create_app(config)


def test_refuses_to_start_with_malformed_keys(tmp_path: Path) -> None:
    keys = tmp_path / "organization.json"
    keys.write_text('{"v": 1, "name": "x"}')
    config = load_config({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_KEYS": str(keys)})
    with pytest.raises(OrganizationError, match="malformed"):
        create_app(config)


def test_demo_mode_makes_a_demo_desk_and_shows_a_banner(tmp_path: Path) -> None:
    config = load_config(
        {
            "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "PORTAL_KEYS": str(tmp_path / "none.json"),
            "PORTAL_DEMO": "1",
        }
    )
    app = create_app(config)
    assert (config.demo_desk_home / "desk.json").exists()
    with app.test_client() as c:
        for path in ("/", "/report"):
            assert "demo-banner" in c.get(path).get_data(as_text=True)
    # A second start reuses the same demo desk.
    first = (config.demo_desk_home / "organization.json").read_bytes()
    create_app(config)
    assert (config.demo_desk_home / "organization.json").read_bytes() == first


def test_a_demo_desk_from_before_pbkdf2_is_retired_and_made_anew(tmp_path: Path) -> None:
    config = load_config(
        {
            "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "PORTAL_KEYS": str(tmp_path / "none.json"),
            "PORTAL_DEMO": "1",
        }
    )
    create_app(config)
    org_file = config.demo_desk_home / "organization.json"
    old = json.loads(org_file.read_text())
    old["kdf"] = {"alg": "argon2id13", "ops": 2, "mem": 16 * 1024 * 1024}
    org_file.write_text(json.dumps(old))
    create_app(config)  # starts, with a new demo desk
    assert json.loads(org_file.read_text())["kdf"]["alg"] == "pbkdf2-sha256"
    (retired,) = config.demo_desk_home.parent.glob(f"{config.demo_desk_home.name}.retired-*")
    assert json.loads((retired / "organization.json").read_text())["kdf"]["alg"] == "argon2id13"


def test_real_keys_win_over_demo_mode(tmp_path: Path, desk_home: Path) -> None:
    config = load_config(
        {
            "PORTAL_DATA_DIR": str(tmp_path),
            "PORTAL_DEMO": "1",
            "PORTAL_KEYS": str(desk_home / "organization.json"),
        }
    )
    with create_app(config).test_client() as c:
        assert "demo-banner" not in c.get("/").get_data(as_text=True)
    assert not config.demo_desk_home.exists()


def test_keys_are_generated_once_private_and_separate(tmp_path: Path, desk_home: Path) -> None:
    config = load_config(
        {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_KEYS": str(desk_home / "organization.json")}
    )
    first = create_app(config).secret_key
    assert create_app(config).secret_key == first
    # The CSRF and proof-of-work keys live in the database (every host reads them
    # there); the TOTP sealing key stays out of it, in a private file.
    assert sorted(run_sql(config, "SELECT name FROM server_keys")) == [("csrf",), ("pow",)]
    assert (tmp_path / "totp.key").stat().st_mode & 0o077 == 0
    assert first != (tmp_path / "totp.key").read_bytes()
    assert not (tmp_path / "csrf.key").exists()


def test_a_key_file_from_before_keys_were_shared_is_taken_over(
    tmp_path: Path, desk_home: Path
) -> None:
    """Forms a reader opened before the upgrade still send after it."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "csrf.key").write_bytes(b"k" * 32)
    config = load_config(
        {"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_KEYS": str(desk_home / "organization.json")}
    )
    assert create_app(config).secret_key == b"k" * 32


def test_the_retired_staff_host_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="create_relay_app"):
        load_config({"PORTAL_STAFF_HOST": "relay.internal"})


def test_config_defaults_and_errors(tmp_path: Path) -> None:
    config = load_config({})
    assert config.data_dir.name == "instance"
    assert config.keys_path.parts[-2:] == ("keys", "organization.json")
    assert config.database_url.startswith("sqlite:///")
    assert not config.demo and not config.tls
    with pytest.raises(ConfigError):
        load_config({"PORTAL_MAX_ENVELOPE_BYTES": "lots"})
    assert replace(config, demo=True).demo
