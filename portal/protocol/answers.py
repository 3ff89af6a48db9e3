"""A questionnaire's answers: how a filled-in form becomes the sealed ``fields``.

The organization's questionnaire (``portal.common.questionnaire``) holds texts in
many languages; what the browser and the server need to turn a form into answers
is only its *rules*: each question's id, type, limits, options and condition.
The browser twin (static/src/protocol/answers.js) does the same with the page's
``FormData``, and both are checked against tests/vectors/answers.json.

Every answer is a string (docs/protocol.md, "Questionnaires"):

==================  =========================================================
short / long text   the text, control characters removed
single choice       the option's id
multiple choice     the chosen options' ids, in the questionnaire's order, " "
yes / no            ``yes``, ``no`` or ``prefer_not``
number              ASCII digits, an optional ``-`` and ``.``; any script's digits
date                ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, ``~`` first if
                    approximate; ``unknown`` for "I don't remember"
files               no answer: the report's attachments
==================  =========================================================

A question whose condition is not met has no answer, whatever the form held: a
reporter without JavaScript sees every question and may answer one meant for
another path. Unanswered questions are left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal[
    "short_text",
    "long_text",
    "single_choice",
    "multiple_choice",
    "yes_no",
    "number",
    "date",
    "files",
]
YES_NO = ("yes", "no", "prefer_not")
CHOICE_KINDS = ("single_choice", "multiple_choice", "yes_no")
UNKNOWN_DATE = "unknown"
APPROXIMATE = "~"
MIN_YEAR = 1900
MAX_YEAR = 2100
# The form's inputs for a date question are named "<id>.year" and so on.
DATE_PARTS = ("year", "month", "day", "approx", "unknown")
# Control characters (C0 but tab and line breaks, DEL, C1) are dropped; a line
# break is LF, as the browser's FormData sends it (a no-JS form sends CRLF).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# One set of spaces for both languages (Python's str.strip and JavaScript's trim
# differ): what "left blank" means, and what a number may be spaced with.
SPACES = (
    " \t\n\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DIGITS = re.compile(r"\A[0-9]+\Z")
_NUMBER = re.compile(r"\A-?[0-9]{1,15}(\.[0-9]{1,6})?\Z")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

Problem = Literal[
    "required", "too_long", "not_a_number", "out_of_range", "not_a_date", "not_an_option"
]


@dataclass(frozen=True)
class Condition:
    """Show a question only if an earlier choice question's answer is one of ``values``."""

    question: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    kind: Kind
    required: bool = False
    max_length: int = 0  # text only
    minimum: float | None = None  # number only
    maximum: float | None = None
    integer: bool = False
    options: tuple[str, ...] = ()  # single and multiple choice
    show_if: Condition | None = None

    @property
    def choices(self) -> tuple[str, ...]:
        return YES_NO if self.kind == "yes_no" else self.options


@dataclass(frozen=True)
class Rules:
    """What a questionnaire asks, without its words: enough to read a form."""

    form: str
    version: int
    digest: str  # SHA-256 of the whole definition, sealed with every report
    rules: tuple[Rule, ...]

    def to_json(self) -> dict[str, Any]:
        """The shape the browser reads (``data-rules`` on the form)."""
        return {
            "form": self.form,
            "version": self.version,
            "digest": self.digest,
            "rules": [_rule_json(r) for r in self.rules],
        }


def _rule_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id, "kind": rule.kind, "required": rule.required}
    if rule.max_length:
        out["max_length"] = rule.max_length
    if rule.minimum is not None:
        out["min"] = rule.minimum
    if rule.maximum is not None:
        out["max"] = rule.maximum
    if rule.integer:
        out["integer"] = True
    if rule.options:
        out["options"] = list(rule.options)
    if rule.show_if:
        out["show_if"] = {"question": rule.show_if.question, "is": list(rule.show_if.values)}
    return out


def rules_from_json(doc: Mapping[str, Any]) -> Rules:
    """The inverse of ``Rules.to_json`` (for the known-answer vectors)."""
    rules = []
    for raw in doc["rules"]:
        cond = raw.get("show_if")
        rules.append(
            Rule(
                id=raw["id"],
                kind=raw["kind"],
                required=bool(raw.get("required")),
                max_length=int(raw.get("max_length", 0)),
                minimum=raw.get("min"),
                maximum=raw.get("max"),
                integer=bool(raw.get("integer")),
                options=tuple(raw.get("options", ())),
                show_if=Condition(cond["question"], tuple(cond["is"])) if cond else None,
            )
        )
    return Rules(doc["form"], int(doc["version"]), doc["digest"], tuple(rules))


Form = Mapping[str, Sequence[str]]  # an input's name to every value sent under it


def without_controls(text: str) -> str:
    """Text with control characters dropped (tabs and line breaks stay, as LF)."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n"))


def _first(form: Form, name: str) -> str:
    values = form.get(name) or ()
    return values[0] if values else ""


def ascii_number(text: str) -> str:
    """Digits of any script to ASCII; "٫" and "," as the decimal mark; spaces dropped."""
    out = []
    for ch in text:
        value = unicodedata.decimal(ch, None)
        if value is not None:
            out.append(str(value))
        elif ch in ".,\u066b":
            out.append(".")
        elif ch in "-\u2212":
            out.append("-")
        elif ch not in SPACES:
            out.append(ch)
    return "".join(out)


def _date(form: Form, qid: str) -> tuple[str, Problem | None]:
    part = {p: _first(form, f"{qid}.{p}").strip(SPACES) for p in DATE_PARTS}
    if part["unknown"]:
        return UNKNOWN_DATE, None
    year, month, day = (ascii_number(part[p]) for p in ("year", "month", "day"))
    if not (year or month or day):
        return "", None
    if not _DIGITS.match(year) or not MIN_YEAR <= int(year) <= MAX_YEAR:
        return "", "not_a_date"
    text = year
    if month:
        if not _DIGITS.match(month) or not 1 <= int(month) <= 12:
            return "", "not_a_date"
        text += f"-{int(month):02d}"
    if day:
        leap = int(year) % 4 == 0 and (int(year) % 100 != 0 or int(year) % 400 == 0)
        if not month or not _DIGITS.match(day):
            return "", "not_a_date"
        days = 28 if int(month) == 2 and not leap else _DAYS[int(month) - 1]
        if not 1 <= int(day) <= days:
            return "", "not_a_date"
        text += f"-{int(day):02d}"
    return (APPROXIMATE + text if part["approx"] else text), None


def _number(raw: str, rule: Rule) -> tuple[str, Problem | None]:
    text = ascii_number(raw)
    if not text:
        return "", None
    if not _NUMBER.match(text) or (rule.integer and "." in text):
        return "", "not_a_number"
    value = float(text)
    if (rule.minimum is not None and value < rule.minimum) or (
        rule.maximum is not None and value > rule.maximum
    ):
        return "", "out_of_range"
    return text, None


def _answer(rule: Rule, form: Form) -> tuple[str, Problem | None]:
    """One question's answer and what is wrong with it, before "required"."""
    if rule.kind in ("short_text", "long_text"):
        text = without_controls(_first(form, rule.id))
        if not text.strip(SPACES):
            return "", None
        return text, ("too_long" if len(text) > rule.max_length else None)
    if rule.kind in ("single_choice", "yes_no"):
        value = _first(form, rule.id)
        if not value:
            return "", None
        return (value, None) if value in rule.choices else ("", "not_an_option")
    if rule.kind == "multiple_choice":
        chosen = set(form.get(rule.id) or ())
        if chosen - set(rule.options):
            return "", "not_an_option"
        return " ".join(o for o in rule.options if o in chosen), None
    if rule.kind == "number":
        return _number(_first(form, rule.id), rule)
    if rule.kind == "date":
        return _date(form, rule.id)
    return "", None  # files: the attachments are the answer


def _shown(rule: Rule, answers: Mapping[str, str]) -> bool:
    if rule.show_if is None:
        return True
    given = answers.get(rule.show_if.question, "").split(" ")
    return any(v in given for v in rule.show_if.values)


def read(rules: Rules, form: Form) -> tuple[dict[str, str], dict[str, Problem]]:
    """The sealed answers and, for every question answered wrongly or required and
    left empty, what is wrong. Conditions see the answers before them, so a question
    behind an unmet condition is neither answered nor required."""
    answers: dict[str, str] = {}
    problems: dict[str, Problem] = {}
    for rule in rules.rules:
        if not _shown(rule, answers):
            continue
        value, problem = _answer(rule, form)
        if problem is None and not value and rule.required:
            problem = "required"
        if problem is not None:
            problems[rule.id] = problem
        elif value:
            answers[rule.id] = value
    return answers, problems
