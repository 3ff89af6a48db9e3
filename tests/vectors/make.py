"""Write ``protocol.json``: known answers both languages check (``make vectors``).

Run once when the protocol changes on purpose, and commit the result; the
Python suite (tests/test_vectors.py) and the browser code's suite
(tests/js/vectors.test.mjs) then both check their code against the same file.
Every value here is computed by the Python protocol modules; the JS suite
re-computes each one with the browser's modules, so a drift on either side fails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from portal.protocol import codes, pow
from portal.protocol.encoding import b64encode
from portal.protocol.envelopes import bucket_size, case_id
from portal.protocol.filecrypt import ALG, chunk_digest, cipher_size, seal_chunk
from portal.protocol.mailbox import wrap_key
from portal.protocol.replies import ReplyItem, seal_reply

OUT = Path(__file__).with_name("protocol.json")
ZERO_TO_NINE = {
    "arabic-indic": 0x0660,
    "persian": 0x06F0,
    "devanagari": 0x0966,
    "bengali": 0x09E6,
    "thai": 0x0E50,
    "myanmar": 0x1040,
    "fullwidth": 0xFF10,
}
KDF = codes.KdfParams(iterations=codes.MIN_ITERATIONS)


def in_script(digits: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in digits)


def code_vectors() -> dict[str, object]:
    prefix = "31415926535897932384626"
    code = prefix + str(codes.damm_digit(prefix))
    typo = code[:5] + str((int(code[5]) + 1) % 10) + code[6:]
    inputs = {
        "grouped": codes.format_code(code),
        "dashes": "-".join(codes.format_code(code).split()),
        "no-break spaces": "\u00a0".join(codes.format_code(code).split()),
        "thin spaces and dots": ".".join(code[:12]) + "\u2009" + code[12:],
        **{name: in_script(code, zero) for name, zero in ZERO_TO_NINE.items()},
        "mixed scripts": in_script(code[:12], 0x0660) + " " + in_script(code[12:], 0x06F0),
        "a typo": typo,
        "one digit short": code[:-1],
        "a letter": code[:10] + "O" + code[11:],
        "empty": "",
    }
    normalised = {}
    for name, text in inputs.items():
        try:
            normalised[name] = {"input": text, "digits": codes.normalise(text)}
        except codes.CodeError:
            normalised[name] = {"input": text, "digits": None}
    return {
        "code": code,
        "damm": [{"prefix": p, "digit": codes.damm_digit(p)} for p in (prefix, "0" * 23, "9" * 23)],
        "formatted": codes.format_code(code),
        "normalise": normalised,
    }


def file_vector() -> dict[str, object]:
    """A small file in three chunks (the last one short), sealed with a fixed key."""
    key, prefix, chunk = bytes(range(32)), bytes(range(7)), 1024
    plain = bytes(i % 251 for i in range(2500))
    pieces = [plain[i : i + chunk] for i in range(0, len(plain), chunk)]
    blob = b"".join(
        seal_chunk(key, prefix, n, n == len(pieces) - 1, piece) for n, piece in enumerate(pieces)
    )
    return {
        "alg": ALG,
        "key": b64encode(key),
        "prefix": b64encode(prefix),
        "chunk": chunk,
        "plain": b64encode(plain),
        "blob": b64encode(blob),
        "digest": chunk_digest([hashlib.sha256(p).digest() for p in pieces]),
        "sha256": hashlib.sha256(plain).hexdigest(),
    }


def main() -> None:
    salt = bytes(range(16))
    code = code_vectors()["code"]
    assert isinstance(code, str)
    derived = codes.derive(code, salt, KDF)
    reporter = PrivateKey(bytes(range(100, 132)))
    desk = SigningKey(bytes(range(200, 232)))
    mailbox = case_id(bytes(reporter.public_key))
    wrapped_key = wrap_key(reporter, derived.wrap)
    items = [
        ReplyItem(mailbox, 1, "2026-11-01", "received", "We have your report."),
        ReplyItem(mailbox, 2, "2026-11-03", None, "مرحبا · a reply in two scripts"),
        ReplyItem(mailbox, 3, "2026-11-05", "closed", ""),
    ]
    sealed = [seal_reply(item, desk, bytes(reporter.public_key)) for item in items]
    tampered = bytearray(sealed[1])
    tampered[-1] ^= 1
    other = ReplyItem("0" * len(mailbox), 4, "2026-11-06", None, "for another case")
    replies = [
        {"seq": 1, "day": "2026-11-01", "sealed": b64encode(sealed[0]), "expect": "verified"},
        {"seq": 2, "day": "2026-11-03", "sealed": b64encode(bytes(tampered)), "expect": "refused"},
        {"seq": 3, "day": "2026-11-05", "sealed": b64encode(sealed[2]), "expect": "verified"},
        # filed under a number the desk did not sign: the server cannot reorder
        {"seq": 7, "day": "2026-11-05", "sealed": b64encode(sealed[0]), "expect": "refused"},
        {
            "seq": 4,
            "day": "2026-11-06",
            "sealed": b64encode(seal_reply(other, desk, bytes(reporter.public_key))),
            "expect": "refused",
        },
    ]
    challenge = pow.Challenge(value=bytes(range(32)), bits=6, iterations=1000)
    vectors = {
        "about": "Known answers for the protocol, written by tests/vectors/make.py.",
        "codes": code_vectors(),
        "derive": {
            "code": code,
            "code_salt": b64encode(salt),
            "kdf": {"alg": codes.KDF_ALG, "iterations": KDF.iterations},
            "lookup": b64encode(derived.lookup),
            "wrap": b64encode(derived.wrap),
            "index": b64encode(derived.index),
        },
        "case_id": {"public_key": b64encode(bytes(reporter.public_key)), "id": mailbox},
        "bucket_size": [
            {"length": n, "size": bucket_size(n)} for n in (0, 1, 1024, 1025, 20_000, 300_000)
        ],
        "cipher_size": [
            {"plain": n, "cipher": cipher_size(n)} for n in (0, 1, 262143, 262144, 262145, 10**6)
        ],
        "file": file_vector(),
        "mailbox": {
            "wrap": b64encode(derived.wrap),
            "wrapped_key": b64encode(wrapped_key),
            "reporter_public_key": b64encode(bytes(reporter.public_key)),
            "verify_key": b64encode(bytes(desk.verify_key)),
            "mailbox": mailbox,
            "replies": replies,
            "items": {
                str(item.seq): {"status": item.status, "text": item.text, "date": item.date}
                for item in items
            },
        },
        "pow": {
            "challenge": b64encode(challenge.value),
            "bits": challenge.bits,
            "iterations": challenge.iterations,
            "nonce": pow.solve(challenge),
        },
    }
    OUT.write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    write_answers()


ANSWERS_OUT = Path(__file__).with_name("answers.json")
EXAMPLE = Path(__file__).resolve().parents[2] / "docs/examples/questionnaires/detention.yaml"


def answers_vectors() -> dict[str, object]:
    """A filled-in form (an input's name to every value sent) and what it answers,
    for the example questionnaire with every type of question and a condition."""
    from portal.common.questionnaire import parse
    from portal.protocol.answers import read

    rules = parse(EXAMPLE.read_bytes()).rules
    forms: dict[str, dict[str, list[str]]] = {
        "everything answered": {
            "account": ["They came at night.\x07 Two cars."],
            "detained_on.year": ["2024"],
            "detained_on.month": ["2"],
            "detained_on.day": ["29"],
            "detained_on.approx": ["1"],
            "who": ["relative"],
            "people": ["۱۲"],
            "still_held": ["yes"],
            "place": ["Central prison"],
            "treatment": ["no_care", "no_lawyer"],
            "may_share": ["prefer_not"],
            "csrf_token": ["not an answer"],
        },
        "the condition unmet drops its answers": {
            "account": ["x"],
            "still_held": ["no"],
            "place": ["should not be sealed"],
            "treatment": ["no_care"],
        },
        "nothing but the required question": {"account": ["  only this  "]},
        "the required question left blank": {"account": ["   "], "who": ["me"]},
        "a date that does not exist": {"account": ["x"], "detained_on.year": ["2023"],
                                       "detained_on.month": ["2"], "detained_on.day": ["29"]},
        "a day without a month": {"account": ["x"], "detained_on.year": ["2023"],
                                  "detained_on.day": ["3"]},
        "a year and a month in Arabic-Indic digits": {"account": ["x"],
                                                      "detained_on.year": ["٢٠١٩"],
                                                      "detained_on.month": ["١١"]},
        "I don't remember wins over a date": {"account": ["x"], "detained_on.year": ["1899"],
                                              "detained_on.unknown": ["1"]},
        "a year out of range": {"account": ["x"], "detained_on.year": ["1899"]},
        "a number out of range": {"account": ["x"], "people": ["0"]},
        "not a whole number": {"account": ["x"], "people": ["2.5"]},
        "not a number": {"account": ["x"], "people": ["twelve"]},
        "an option not offered": {"account": ["x"], "who": ["nobody"]},
        "a forged multiple choice": {"account": ["x"], "still_held": ["yes"],
                                     "treatment": ["no_care", "<script>"]},
        "yes and no offer a third answer": {"account": ["x"], "still_held": ["prefer_not"],
                                            "place": ["hidden"]},
        "too long": {"account": ["x"], "still_held": ["yes"], "place": ["p" * 301]},
        "astral characters count once": {"account": ["x"], "still_held": ["yes"],
                                         "place": ["\U0001f600" * 300]},
        "superscript digits are no year": {"account": ["x"], "detained_on.year": ["20²4"]},
        "only invisible spaces is blank": {"account": ["\ufeff\u3000\u2028 "]},
        "C1 controls are dropped": {"account": ["a\x85b\x9fc"]},
        "a line break counts once, sent as CRLF": {"account": ["x"], "still_held": ["yes"],
                                                   "place": ["ab\r\n" * 100]},
        "numbers may be spaced": {"account": ["x"], "people": ["1\u202f2 "]},
        "a number spaced with a control is no number": {"account": ["x"], "people": ["1\x1c2"]},
    }  # fmt: skip
    cases = []
    for name, form in forms.items():
        answers, problems = read(rules, form)
        cases.append({"name": name, "form": form, "answers": answers, "problems": problems})
    return {"rules": rules.to_json(), "cases": cases}


def write_answers() -> None:
    text = json.dumps(answers_vectors(), ensure_ascii=False, indent=1) + "\n"
    ANSWERS_OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
