"""Case names people can say: short, pronounceable and stable.

A case's id is the hash of its reporter's key (32 hex digits), fine for
machines and hard for people. Its name is three two-syllable words made from
the id's first 48 bits, e.g. ``bako-tifu-mera``: it never changes, needs no
storage, and the desk resolves it like an id. Two cases share a name with odds
of about one in 2^37 per pair; ``resolve`` then says the name is ambiguous and
the id (or a longer prefix of it) still names each one.
"""

from __future__ import annotations

import re

CONSONANTS = "bdfghjklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = [c + v for c in CONSONANTS for v in VOWELS]  # 80 of them
WORDS = 3
NAME = re.compile(r"\A[a-z]{4}(?:-[a-z]{4}){2}\Z")


def case_name(case_id: str) -> str:
    """The case's name: 6 syllables from its id's first 12 hex digits."""
    number = int(case_id[:12], 16)
    syllables = []
    for _ in range(WORDS * 2):
        number, index = divmod(number, len(SYLLABLES))
        syllables.append(SYLLABLES[index])
    return "-".join("".join(syllables[i : i + 2]) for i in range(0, WORDS * 2, 2))


def looks_like_name(text: str) -> bool:
    return NAME.match(text) is not None
