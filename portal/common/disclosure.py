"""Counts that may be published without singling anyone out, for the desk that
publishes them and the portal that shows them alike.

A count under ``least`` is withheld. That alone is not enough: when a total is
shown, the withheld parts add up to the total minus the parts shown, so a
withheld remainder of 1 is as good as published. ``withheld`` therefore also
withholds the smallest shown part while such a remainder is between 1 and
``least - 1`` (complementary suppression).
"""

from __future__ import annotations

from collections.abc import Mapping


def shown(n: int | None, least: int) -> int | None:
    """``n``, or None when it is under ``least`` (or already withheld)."""
    return n if n is not None and n >= least else None


def withheld(
    total: int | None, parts: Mapping[str, int | None], least: int
) -> dict[str, int | None]:
    """The parts of ``total`` that can be shown; the others are None."""
    out = {k: shown(v, least) for k, v in parts.items()}
    if total is None:
        return out
    while True:
        remainder = total - sum(v for v in out.values() if v is not None)
        visible = [k for k, v in out.items() if v is not None]
        if not (0 < remainder < least) or not visible:
            return out
        out[min(visible, key=lambda k: (out[k] or 0, k))] = None
