"""organization.json: parsing, checking, and messages an operator can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portal.desk import keystore
from portal.protocol.organization import Organization, OrganizationError, fingerprint, load, parse


def test_the_ceremony_output_parses_and_round_trips(desk_home: Path, org: Organization) -> None:
    loaded = load(desk_home / keystore.ORG_FILE)
    assert loaded == org
    assert parse(loaded.to_json()) == loaded
    assert not loaded.demo


def test_fingerprint_is_the_key_id_in_groups_of_four(org: Organization) -> None:
    groups = org.fingerprint.split(" ")
    assert len(groups) == 8 and all(len(g) == 4 for g in groups)
    assert "".join(groups) == org.encrypt[0].kid
    assert fingerprint("abcd1234") == "abcd 1234"


def _mutated(org: Organization, change: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(org.to_json()))
    change(doc)
    return doc


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(v=2),
        lambda d: d.pop("name"),
        lambda d: d.update(encrypt=[]),
        lambda d: d["encrypt"][0].update(kid="0" * 32),
        lambda d: d["encrypt"][0].update(pk="short"),
        lambda d: d["verify"].update(kid="0" * 32),
        lambda d: d.update(code_salt="AAAA"),
        lambda d: d["kdf"].update(alg="scrypt"),
        lambda d: d["kdf"].update(iterations=1000),
        lambda d: d["kdf"].update(iterations=True),
        lambda d: d["kdf"].update(alg="argon2id13"),
    ],
)
def test_malformed_files_are_refused(org: Organization, change: Any) -> None:
    with pytest.raises(OrganizationError):
        parse(_mutated(org, change))


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(OrganizationError, match="portal desk init"):
        load(tmp_path / "organization.json")


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "organization.json"
    path.write_text("{not json")
    with pytest.raises(OrganizationError, match="not valid JSON"):
        load(path)
