"""Case codes: check digit, normalisation and derivation (DESIGN §5)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from portal.protocol import codes
from portal.protocol.codes import CodeError, KdfParams

PARAMS = KdfParams(iterations=codes.MIN_ITERATIONS)
SALT = bytes(range(16))


def test_damm_check_digit_matches_the_published_example() -> None:
    # Damm's own worked example: the check digit of 572 is 4.
    assert codes.damm_digit("572") == 4
    assert codes.damm_digit("5724") == 0


def test_generated_codes_have_24_digits_and_a_valid_check_digit() -> None:
    for _ in range(200):
        code = codes.generate()
        assert len(code) == 24 and code.isascii() and code.isdigit()
        assert codes.normalise(code) == code


def test_generated_digits_are_roughly_uniform() -> None:
    counts = [0] * 10
    for _ in range(2000):
        for ch in codes.generate()[:-1]:
            counts[int(ch)] += 1
    expected = 2000 * 23 / 10
    # Chi-square with 9 degrees of freedom; 27.9 is the 0.1% critical value.
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 27.9, counts


def test_every_single_digit_typo_is_caught() -> None:
    code = codes.generate()
    for i in range(24):
        for d in "0123456789":
            if d != code[i]:
                typo = code[:i] + d + code[i + 1 :]
                with pytest.raises(CodeError):
                    codes.normalise(typo)


def test_every_adjacent_transposition_is_caught() -> None:
    code = codes.generate()
    for i in range(23):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            with pytest.raises(CodeError):
                codes.normalise(swapped)


def _in_script(digits: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(d)) for d in digits)


@pytest.mark.parametrize(
    "zero",
    ["\u0660", "\u06f0", "\u0966", "\uff10", "\u09e6"],
    ids=["arabic-indic", "persian", "devanagari", "fullwidth", "bengali"],
)
def test_unicode_digits_normalise_to_ascii(zero: str) -> None:
    code = codes.generate()
    typed = " ".join(_in_script(code[i : i + 4], zero) for i in range(0, 24, 4))
    assert codes.normalise(typed) == code


def test_spaces_dashes_and_dots_are_ignored() -> None:
    code = codes.generate()
    grouped = codes.format_code(code)
    assert codes.normalise(grouped) == code
    assert codes.normalise(grouped.replace(" ", "-")) == code
    assert codes.normalise(grouped.replace(" ", ".")) == code
    assert codes.normalise(f"  {grouped}\u00a0") == code


@pytest.mark.parametrize("bad", ["", "1234", "abcd " * 6, "1" * 25, "12345678901234567890123x"])
def test_malformed_codes_are_refused(bad: str) -> None:
    with pytest.raises(CodeError):
        codes.normalise(bad)


def test_format_and_last_group() -> None:
    code = "391822074471038599621548"
    assert codes.format_code(code) == "3918 2207 4471 0385 9962 1548"
    assert codes.last_group(code) == "1548"


def test_the_derivation_equals_an_independent_pbkdf2_and_hmac() -> None:
    """``cryptography``'s OpenSSL against the interpreter's hashlib: one PBKDF2
    block, then two HMAC labels (the browser's WebCrypto is held to it by the
    shared vectors)."""
    code = codes.generate()
    derived = codes.derive(code, SALT, PARAMS)
    seed = hashlib.pbkdf2_hmac("sha256", code.encode(), SALT, PARAMS.iterations, 32)
    for label, value in (
        (b"portal-code-lookup", derived.lookup),
        (b"portal-code-wrap", derived.wrap),
    ):
        assert hmac.new(seed, label, hashlib.sha256).digest() == value
    assert derived.lookup != derived.wrap


def test_more_iterations_derive_other_keys() -> None:
    code = codes.generate()
    more = KdfParams(iterations=PARAMS.iterations + 1)
    assert codes.derive(code, SALT, PARAMS).index != codes.derive(code, SALT, more).index


def test_different_codes_and_salts_derive_different_keys() -> None:
    code = codes.generate()
    a = codes.derive(code, SALT, PARAMS)
    b = codes.derive(code, bytes(16), PARAMS)
    c = codes.derive(codes.generate(), SALT, PARAMS)
    assert len({a.index, b.index, c.index}) == 3
