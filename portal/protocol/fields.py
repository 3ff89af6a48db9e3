"""The fields a sealed report carries: their names (the keys of the sealed
plaintext), labels, help and limits. The server builds its form from them and
the desk lays reports out by them, so both read one definition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from portal.common.languages import N_


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: Literal["short_text", "long_text", "yes_no"]
    max_length: int = 0  # characters; 0 for a choice
    help: str | None = None
    required: bool = False


REPORT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "what_happened",
        N_("What happened?"),
        "long_text",
        50_000,
        N_("In your own words. Write as much or as little as you feel able to."),
        required=True,
    ),
    FieldSpec(
        "when",
        N_("When did it happen?"),
        "short_text",
        300,
        N_("A date, a month, or something like “last winter” is fine."),
    ),
    FieldSpec(
        "where",
        N_("Where did it happen?"),
        "short_text",
        500,
        N_("A town, a region or a place. Only as precise as feels safe."),
    ),
    FieldSpec(
        "who_affected",
        N_("Who was affected?"),
        "long_text",
        10_000,
        N_("You, or other people. You do not have to give names."),
    ),
    FieldSpec(
        "who_responsible",
        N_("Who was responsible, if you know?"),
        "long_text",
        10_000,
        N_("For example a group, a unit, an institution or a person."),
    ),
    FieldSpec(
        "may_contact",
        N_("May we write back to you through this portal?"),
        "yes_no",
        help=N_(
            "You read our replies by opening your case with your code. "
            "We never contact you any other way."
        ),
    ),
    FieldSpec(
        "may_share",
        N_("May we share your report with partner legal-aid organizations?"),
        "yes_no",
        help=N_("Only with organizations we trust, and only to get you help."),
    ),
    FieldSpec("language", N_("In which language would you like us to reply?"), "short_text", 100),
    FieldSpec(
        "needs",
        N_("Do you need an interpreter or any accessibility support?"),
        "long_text",
        5_000,
    ),
)


def field_labels() -> dict[str, str]:
    """Labels for every sealed field name, for laying reports out on the desk."""
    return {
        **{spec.name: spec.label for spec in REPORT_FIELDS},
        "message": N_("Message"),
        "answer": N_("Answers"),
    }
