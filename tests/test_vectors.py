"""The protocol's known answers (tests/vectors/protocol.json), checked in Python.

The same file is checked by the browser code's suite (tests/js/vectors.test.mjs),
so Python and JavaScript are held to one set of answers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.public import PrivateKey

from portal.protocol import codes, pow
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.envelopes import bucket_size, case_id
from portal.protocol.filecrypt import CHUNK, EncryptingWriter, FileSeal, cipher_size, verify
from portal.protocol.mailbox import unwrap_key
from portal.protocol.replies import verified_in_order

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "protocol.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", sorted(VECTORS["codes"]["normalise"]))
def test_codes_normalise_in_every_script_as_the_vectors_say(name: str) -> None:
    case = VECTORS["codes"]["normalise"][name]
    if case["digits"] is None:
        with pytest.raises(codes.CodeError):
            codes.normalise(case["input"])
    else:
        assert codes.normalise(case["input"]) == case["digits"]


def test_check_digits_and_grouping_match_the_vectors() -> None:
    for case in VECTORS["codes"]["damm"]:
        assert codes.damm_digit(case["prefix"]) == case["digit"]
    assert codes.format_code(VECTORS["codes"]["code"]) == VECTORS["codes"]["formatted"]


def test_the_code_derivation_matches_the_vectors() -> None:
    v = VECTORS["derive"]
    assert v["kdf"]["alg"] == codes.KDF_ALG
    kdf = codes.KdfParams(iterations=v["kdf"]["iterations"])
    derived = codes.derive(v["code"], b64decode(v["code_salt"]), kdf)
    assert b64encode(derived.lookup) == v["lookup"]
    assert b64encode(derived.wrap) == v["wrap"]
    assert b64encode(derived.index) == v["index"]


def test_sizes_and_case_ids_match_the_vectors() -> None:
    assert case_id(b64decode(VECTORS["case_id"]["public_key"])) == VECTORS["case_id"]["id"]
    for case in VECTORS["bucket_size"]:
        assert bucket_size(case["length"]) == case["size"]
    for case in VECTORS["cipher_size"]:
        assert cipher_size(case["plain"]) == case["cipher"]


def test_a_mailbox_opens_and_only_the_desks_items_in_their_signed_order_are_trusted() -> None:
    v = VECTORS["mailbox"]
    reporter: PrivateKey = unwrap_key(b64decode(v["wrap"]), b64decode(v["wrapped_key"]))
    assert b64encode(bytes(reporter.public_key)) == v["reporter_public_key"]
    filed = [(r["seq"], b64decode(r["sealed"])) for r in v["replies"]]
    shown = verified_in_order(filed, reporter, b64decode(v["verify_key"]))
    expect = sorted(v["replies"], key=lambda r: r["seq"])
    assert [seq for seq, _ in shown] == [r["seq"] for r in expect]
    for (seq, item), want in zip(shown, expect, strict=True):
        assert (item is not None) == (want["expect"] == "verified"), seq
        if item is not None:
            told = v["items"][str(seq)]
            assert (item.status, item.text, item.date) == (
                told["status"],
                told["text"],
                told["date"],
            )


def test_the_smallest_proof_of_work_matches_the_vectors() -> None:
    v = VECTORS["pow"]
    challenge = pow.Challenge(b64decode(v["challenge"]), v["bits"], v["iterations"])
    assert pow.solve(challenge) == v["nonce"]


def test_a_file_stream_opens_to_its_digest_and_hash_as_the_vectors_say() -> None:
    v = VECTORS["file"]
    seal = FileSeal.from_entry(v)
    checked = verify(io.BytesIO(b64decode(v["blob"])), seal)
    assert checked.sha256 == v["sha256"] and checked.size == len(b64decode(v["plain"]))
    # and the writer, given the vector's key and prefix, writes the same bytes
    out = io.BytesIO()
    writer = EncryptingWriter(out, chunk=v["chunk"])
    writer.key, writer.prefix = seal.key, seal.prefix
    writer._aead = AESGCM(seal.key)
    writer.write(b64decode(v["plain"]))
    assert writer.finish().digest == v["digest"] and b64encode(out.getvalue()) == v["blob"]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 4 * CHUNK, 4 * CHUNK + 1, 9 * CHUNK + 7])
def test_a_file_the_browser_modules_seal_opens_in_python_byte_for_byte(
    tmp_path: Path, size: int
) -> None:
    """The real beginFile/nextPart/endFile (chunking, last flags, part boundaries)
    run in Node; Python's verify opens the result, and the browser refuses a part
    more than the file holds."""
    plain = os.urandom(size)
    (tmp_path / "in").write_bytes(plain)
    done = subprocess.run(
        ["node", "tests/js/seal_file.mjs", str(tmp_path / "in"), str(tmp_path / "out")],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout)
    blob = (tmp_path / "out").read_bytes()
    assert len(blob) == cipher_size(size) == result["info"]["cipherSize"]
    checked = verify(io.BytesIO(blob), FileSeal.from_entry(result["entry"]))
    assert checked.size == size and checked.sha256 == hashlib.sha256(plain).hexdigest()
    assert result["oneMoreRefused"] is True


ANSWERS = json.loads((Path(__file__).parent / "vectors" / "answers.json").read_text("utf-8"))


@pytest.mark.parametrize("case", ANSWERS["cases"], ids=lambda c: c["name"])
def test_a_filled_in_form_answers_as_the_vectors_say(case: dict[str, Any]) -> None:
    from portal.protocol.answers import read, rules_from_json

    answers, problems = read(rules_from_json(ANSWERS["rules"]), case["form"])
    assert (answers, problems) == (case["answers"], case["problems"])


def test_the_answer_vectors_are_the_example_questionnaires_rules() -> None:
    """The vectors were made from docs/examples (make vectors): they drift together."""
    from portal.common.questionnaire import parse

    example = Path(__file__).parent.parent / "docs/examples/questionnaires/detention.yaml"
    assert parse(example.read_bytes()).rules.to_json() == ANSWERS["rules"]
