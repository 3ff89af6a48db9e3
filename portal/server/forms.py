"""The reporter's form, built from the report's fields (``portal.protocol.fields``)
with the server's validators. Its field names are the keys of the sealed plaintext."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import Field, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.common.languages import N_
from portal.protocol.fields import REPORT_FIELDS, FieldSpec

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_controls(value: object) -> object:
    """Drop control characters (tabs and line breaks stay) from submitted text."""
    return _CONTROLS.sub("", value) if isinstance(value, str) else value


TEXT = [without_controls]

YES_NO = [SelectChoice("yes", N_("Yes")), SelectChoice("no", N_("No"))]
TOO_LONG = N_("This answer is longer than the portal accepts. Please shorten it.")
REQUIRED = N_("Please tell us what happened.")


def _field(spec: FieldSpec) -> Field:
    description = spec.help or ""
    if spec.kind == "yes_no":
        return RadioField(
            spec.label,
            description=description,
            choices=YES_NO,
            filters=TEXT,
            validators=[Optional()],
        )
    first = DataRequired(message=REQUIRED) if spec.required else Optional()
    validators = [first, Length(max=spec.max_length, message=TOO_LONG)]
    kind = TextAreaField if spec.kind == "long_text" else StringField
    return kind(spec.label, description=description, filters=TEXT, validators=validators)


class ReportForm(FlaskForm):
    """A new report. Only the description is required."""

    form_id = "report"
    form_version = 1

    def sealed_field_names(self) -> list[str]:
        """Every field that goes into the sealed report, in form order."""
        return [f.name for f in self if f.name != "csrf_token"]

    def report_fields(self) -> dict[str, str]:
        """The submitted values, exactly as the browser would collect them."""
        return {name: str(self[name].data or "") for name in self.sealed_field_names()}


for _spec in REPORT_FIELDS:  # in form order: the class keeps the order fields are made in
    setattr(ReportForm, _spec.name, _field(_spec))
