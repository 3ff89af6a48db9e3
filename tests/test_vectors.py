"""The protocol's known answers (tests/vectors/protocol.json), checked in Python.

The same file is checked by the browser code's suite (tests/js/vectors.test.mjs),
so Python and JavaScript are held to one set of answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey

from portal.protocol import codes, pow
from portal.protocol.encoding import b64decode, b64encode
from portal.protocol.envelopes import bucket_size, case_id
from portal.protocol.filecrypt import cipher_size
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
    kdf = codes.KdfParams(ops=v["kdf"]["ops"], mem=v["kdf"]["mem"])
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
