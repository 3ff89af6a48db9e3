"""Text from reporters, made safe to show on the desk operator's terminal.

Control characters, bidi controls, invisible format characters, tag characters,
private-use, surrogate and unassigned code points are shown as visible escapes
(``\\x1b``, ``\\u202e``) or, in file names, removed. Everything else, in any
script, is left as it is.

One exception keeps ordinary Persian, Indic and emoji text intact: a single
zero-width non-joiner or joiner (U+200C, U+200D) between two non-ASCII letters,
marks or symbols is part of the writing, not a trick, and is kept.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable

BIDI = frozenset(
    {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)},
)
INVISIBLE = frozenset({*range(0x200B, 0x200E), *range(0x2060, 0x2065), 0xFEFF, 0x180E, 0x00AD})
TAGS = range(0xE0000, 0xE0080)
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
JOINERS = frozenset({"\u200c", "\u200d"})
MULTILINE_KEEP = frozenset({"\n", "\t"})
SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_hidden(char: str) -> bool:
    """Whether a character is a control, bidi, invisible, tag or unassigned one."""
    code = ord(char)
    return (
        code in BIDI
        or code in INVISIBLE
        or code in TAGS
        or unicodedata.category(char) in HIDDEN_CATEGORIES
    )


def _joins(before: str, after: str) -> bool:
    """Whether both neighbours of a joiner are non-ASCII letters, marks or symbols."""
    return all(
        char > "\x7f" and not is_hidden(char) and unicodedata.category(char)[0] in "LMS"
        for char in (before, after)
    )


def _kept(text: str, i: int, keep: frozenset[str]) -> bool:
    """Whether text[i] stays as it is: not hidden, in keep, or a joiner in writing."""
    char = text[i]
    if char in keep or not is_hidden(char):
        return True
    return char in JOINERS and 0 < i < len(text) - 1 and _joins(text[i - 1], text[i + 1])


def _replace_hidden(text: str, keep: frozenset[str], replace: Callable[[str], str]) -> str:
    """text with every character that is not kept passed through replace."""
    return "".join(char if _kept(text, i, keep) else replace(char) for i, char in enumerate(text))


def python_escape(char: str) -> str:
    """``\\n``, ``\\x1b``, ``\\u202e`` or ``\\U000e0041`` for one character."""
    code = ord(char)
    if char in SHORT_ESCAPES:
        return SHORT_ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def json_escape(char: str) -> str:
    """The JSON ``\\uXXXX`` escape of one character (a surrogate pair above U+FFFF)."""
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def for_terminal(text: str, *, multiline: bool = False) -> str:
    """text with hidden characters written as visible escapes; with multiline,
    line feeds and tabs are kept."""
    return _replace_hidden(text, MULTILINE_KEEP if multiline else frozenset(), python_escape)


def json_for_terminal(data: object) -> str:
    """Indented JSON of data whose hidden characters are ``\\uXXXX`` escapes."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    # Outside string literals json.dumps writes only ASCII punctuation, digits,
    # spaces and line feeds, so every hidden character here is inside a string.
    return _replace_hidden(text, MULTILINE_KEEP, json_escape)


def clean_name(name: str) -> str:
    """name without its hidden characters."""
    return _replace_hidden(name, frozenset(), lambda _char: "")
