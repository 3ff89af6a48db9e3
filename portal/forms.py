"""The reporter's forms. Their field names are the keys of the sealed plaintext."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, StringField, TextAreaField
from wtforms.fields.core import UnboundField
from wtforms.validators import DataRequired, Length, Optional

from .i18n import N_

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_controls(value: object) -> object:
    """Drop control characters (tabs and line breaks stay) from submitted text."""
    return _CONTROLS.sub("", value) if isinstance(value, str) else value


TEXT = [without_controls]

YES_NO = [SelectChoice("yes", N_("Yes")), SelectChoice("no", N_("No"))]
TOO_LONG = N_("This answer is longer than the portal accepts. Please shorten it.")


def field_labels() -> dict[str, str]:
    """Labels for every sealed field name, for laying reports out on the desk
    (read from the form's class: no application is needed)."""
    labels = {
        name: str(field.args[0])
        for name, field in vars(ReportForm).items()
        if isinstance(field, UnboundField)
    }
    return {**labels, "message": "Message", "answer": "Answers"}


class ReportForm(FlaskForm):
    """A new report. Only the description is required."""

    form_id = "report"
    form_version = 1

    what_happened = TextAreaField(
        N_("What happened?"),
        description=N_("In your own words. Write as much or as little as you feel able to."),
        filters=TEXT,
        validators=[
            DataRequired(message=N_("Please tell us what happened.")),
            Length(max=50_000, message=TOO_LONG),
        ],
    )
    when = StringField(
        N_("When did it happen?"),
        description=N_("A date, a month, or something like “last winter” is fine."),
        filters=TEXT,
        validators=[Optional(), Length(max=300, message=TOO_LONG)],
    )
    where = StringField(
        N_("Where did it happen?"),
        description=N_("A town, a region or a place. Only as precise as feels safe."),
        filters=TEXT,
        validators=[Optional(), Length(max=500, message=TOO_LONG)],
    )
    who_affected = TextAreaField(
        N_("Who was affected?"),
        description=N_("You, or other people. You do not have to give names."),
        filters=TEXT,
        validators=[Optional(), Length(max=10_000, message=TOO_LONG)],
    )
    who_responsible = TextAreaField(
        N_("Who was responsible, if you know?"),
        description=N_("For example a group, a unit, an institution or a person."),
        filters=TEXT,
        validators=[Optional(), Length(max=10_000, message=TOO_LONG)],
    )
    may_contact = RadioField(
        N_("May we write back to you through this portal?"),
        description=N_(
            "You read our replies by opening your case with your code. "
            "We never contact you any other way."
        ),
        choices=YES_NO,
        filters=TEXT,
        validators=[Optional()],
    )
    may_share = RadioField(
        N_("May we share your report with partner legal-aid organizations?"),
        description=N_("Only with organizations we trust, and only to get you help."),
        choices=YES_NO,
        filters=TEXT,
        validators=[Optional()],
    )
    language = StringField(
        N_("In which language would you like us to reply?"),
        filters=TEXT,
        validators=[Optional(), Length(max=100, message=TOO_LONG)],
    )
    needs = TextAreaField(
        N_("Do you need an interpreter or any accessibility support?"),
        filters=TEXT,
        validators=[Optional(), Length(max=5_000, message=TOO_LONG)],
    )

    def sealed_field_names(self) -> list[str]:
        """Every field that goes into the sealed report, in form order."""
        return [f.name for f in self if f.name != "csrf_token"]

    def report_fields(self) -> dict[str, str]:
        """The submitted values, exactly as the browser would collect them."""
        return {name: str(self[name].data or "") for name in self.sealed_field_names()}
