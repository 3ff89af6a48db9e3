"""The desk's key ceremony and passphrase unlock (DESIGN §4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.desk import keystore
from portal.desk.keystore import KeystoreError
from tests.harness.web import PASSPHRASE


def test_unlock_gives_keys_matching_the_public_file(desk_home: Path) -> None:
    keys = keystore.unlock(desk_home, PASSPHRASE)
    org = keys.organization
    assert bytes(keys.encrypt[org.encrypt[0].kid].public_key) == org.encrypt[0].pk
    assert bytes(keys.signing.verify_key) == org.verify_key


def test_private_keys_are_not_stored_in_the_clear(desk_home: Path) -> None:
    keys = keystore.unlock(desk_home, PASSPHRASE)
    raw = b"".join(p.read_bytes() for p in desk_home.iterdir() if p.is_file())
    assert bytes(next(iter(keys.encrypt.values()))) not in raw
    assert bytes(keys.signing) not in raw
    public = json.loads((desk_home / "organization.json").read_text())
    assert set(public) == {"v", "name", "encrypt", "verify", "code_salt", "kdf"}
    assert {k for e in public["encrypt"] for k in e} == {"kid", "pk"}


def test_wrong_passphrase_is_refused(desk_home: Path) -> None:
    with pytest.raises(KeystoreError, match="not right"):
        keystore.unlock(desk_home, "not the passphrase")


def test_init_refuses_to_overwrite_existing_keys(desk_home: Path) -> None:
    before = (desk_home / keystore.DESK_FILE).read_bytes()
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        keystore.init(desk_home, "another", "Other", cost="interactive")
    assert (desk_home / keystore.DESK_FILE).read_bytes() == before


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError):
        keystore.init(tmp_path / "desk", "", "Org", cost="interactive")


def test_sensitive_cost_is_the_default(tmp_path: Path) -> None:
    keystore.init(tmp_path / "desk", "pass", "Org")
    kdf = json.loads((tmp_path / "desk" / keystore.DESK_FILE).read_text())["people"][0]["kdf"]
    assert (kdf["ops"], kdf["mem"]) == keystore.COSTS["sensitive"]
