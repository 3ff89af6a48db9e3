"""A questionnaire as the reporter's page shows it, in their language.

``form_view`` turns a definition (``portal.common.questionnaire``), what was sent
(on an error) and what was wrong into plain view objects, so the templates only
lay them out. Without JavaScript every question is shown; one behind a
condition says which answer it follows ("Only if you answered “Yes” to …").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from flask_babel import gettext
from markupsafe import Markup

from portal.common.languages import N_
from portal.common.questionnaire import YES_NO_WORDS, Question, Questionnaire, shown_answer
from portal.protocol.answers import YES_NO, Form, Problem

PROBLEMS: dict[str, str] = {
    "required": N_("Please answer this question."),
    "too_long": N_("This answer is longer than the portal accepts. Please shorten it."),
    "not_a_number": N_("Please write a number, for example 12."),
    "out_of_range": N_("This number is outside what the question allows."),
    "not_a_date": N_(
        "Please give a year from 1900, and a month and day only if you know them; "
        "the day must exist in that month."
    ),
    "not_an_option": N_("Please choose one of the answers shown."),
}
MONTHS = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)


@dataclass(frozen=True)
class Choice:
    id: str  # the input's HTML id
    value: str
    label: str
    checked: bool = False


@dataclass(frozen=True)
class QuestionView:
    id: str
    kind: str
    label: str
    help: str | Markup
    required: bool
    input_id: str  # the first input: what a label or an error link points at
    value: str = ""
    choices: tuple[Choice, ...] = ()
    date: Mapping[str, str] = field(default_factory=dict)
    months: tuple[Choice, ...] = ()
    condition: str = ""  # the no-JS words; the script hides the question instead
    show_if: str = ""  # JSON for the script: {"question": …, "is": […]}
    error: str = ""
    max_length: int = 0

    @property
    def hint_id(self) -> str:
        return f"{self.input_id}-hint"

    @property
    def lead_in(self) -> str:
        """The label before what is wrong with the answer, in an error summary (the
        server's and the page's alike)."""
        return lead_in(self.label)

    @property
    def error_id(self) -> str:
        return f"{self.input_id}-error"

    @property
    def condition_id(self) -> str:
        return f"{self.input_id}-condition"

    @property
    def described_by(self) -> str:
        shown = (
            (self.condition_id, self.condition),
            (self.hint_id, self.help),
            (self.error_id, self.error),
        )
        return " ".join(i for i, text in shown if text)


@dataclass(frozen=True)
class SectionView:
    title: str
    intro: str | Markup
    questions: tuple[QuestionView, ...]


@dataclass(frozen=True)
class FormView:
    questionnaire: Questionnaire
    title: str
    intro: str | Markup
    sections: tuple[SectionView, ...]
    errors: tuple[tuple[str, str, str], ...]  # input id, question label as a lead-in, what is wrong
    rules: str  # JSON for the script
    keep_copy: bool = False  # the reporter asked for a copy of their words

    @property
    def has_files(self) -> bool:
        return any(q.kind == "files" for s in self.sections for q in s.questions)


def _values(form: Form | None, name: str) -> list[str]:
    return list(form.get(name) or ()) if form is not None else []


def _choice_words(q: Questionnaire, qid: str, values: tuple[str, ...], lang: str) -> list[str]:
    target = q.question(qid)
    if target is None:
        return list(values)
    if target.rule.kind == "yes_no":
        return [gettext(YES_NO_WORDS[v]) for v in values]
    return [str(label.text(lang)) if (label := target.choice_label(v)) else v for v in values]


def _condition(q: Questionnaire, question: Question, lang: str) -> tuple[str, str]:
    cond = question.rule.show_if
    if cond is None:
        return "", ""
    target = q.question(cond.question)
    asked = str(target.label.text(lang)) if target else cond.question
    answers = gettext(" or ").join(
        gettext("“%(answer)s”", answer=w)
        for w in _choice_words(q, cond.question, cond.values, lang)
    )
    words = gettext(
        "Answer this only if you answered %(answers)s to “%(question)s”.",
        answers=answers,
        question=asked,
    )
    return words, json.dumps({"question": cond.question, "is": list(cond.values)})


def _question(
    q: Questionnaire, question: Question, form: Form | None, problem: str | None, lang: str
) -> QuestionView:
    rule = question.rule
    base = rule.id  # the page's own ids are hyphenated or reserved (questionnaire.RESERVED)
    sent = _values(form, rule.id)
    condition, show_if = _condition(q, question, lang)
    plain = QuestionView(
        id=rule.id,
        kind=rule.kind,
        label=str(question.label.text(lang)),
        help=question.help.text(lang),
        required=rule.required,
        input_id=base,
        condition=condition,
        show_if=show_if,
        error=gettext(PROBLEMS[problem]) if problem else "",
        max_length=rule.max_length,
    )
    if rule.kind in ("single_choice", "multiple_choice", "yes_no"):
        options = (
            [(v, gettext(YES_NO_WORDS[v])) for v in YES_NO]
            if rule.kind == "yes_no"
            else [(o.id, str(o.label.text(lang))) for o in question.options]
        )
        choices = tuple(
            Choice(f"{base}-{value}", value, label, value in sent) for value, label in options
        )
        return replace(plain, input_id=choices[0].id, choices=choices)
    if rule.kind == "date":
        parts = {p: (_values(form, f"{rule.id}.{p}") or [""])[0] for p in ("year", "month", "day")}
        flags = {p: bool(_values(form, f"{rule.id}.{p}")) for p in ("approx", "unknown")}
        months = tuple(
            Choice(f"{base}-month", str(i), gettext(name), parts["month"] == str(i))
            for i, name in enumerate(MONTHS, start=1)
        )
        date = {**parts, **{k: "1" if v else "" for k, v in flags.items()}}
        return replace(plain, input_id=f"{base}-year", date=date, months=months)
    if rule.kind == "files":
        return replace(plain, input_id="files")
    return replace(plain, value=(sent or [""])[0])


def form_view(
    q: Questionnaire,
    lang: str,
    form: Form | None = None,
    problems: Mapping[str, Problem] | None = None,
) -> FormView:
    """What the report page shows for ``q``: blank, or as sent with what was wrong."""
    problems = problems or {}
    sections = tuple(
        SectionView(
            title=str(s.title.text(lang)),
            intro=s.intro.text(lang),
            questions=tuple(
                _question(q, question, form, problems.get(question.id), lang)
                for question in s.questions
            ),
        )
        for s in q.sections
    )
    errors = tuple(
        (v.input_id, v.lead_in, v.error) for s in sections for v in s.questions if v.error
    )
    return FormView(
        questionnaire=q,
        title=str(q.title.text(lang)),
        intro=q.intro.text(lang),
        sections=sections,
        errors=errors,
        rules=json.dumps(q.rules.to_json(), separators=(",", ":")),
        keep_copy=bool(_values(form, "keep_copy")),
    )


# A question that already ends in one of these takes no colon before what is wrong
# ("What happened?" rather than "What happened?:"), in any of the portal's scripts.
_ENDS_A_LEAD_IN = frozenset("?!:;.…؟؛。？！：；။၊")


def lead_in(label: str) -> str:
    """A question's label before what is wrong with its answer, in the error summary."""
    return label if label.rstrip()[-1:] in _ENDS_A_LEAD_IN else f"{label}:"


def copy_words(q: Questionnaire, answers: Mapping[str, str], lang: str) -> dict[str, str]:
    """The reporter's own copy: each answered question and its answer, in words, in
    their language, as one text (the browser builds the same from its page)."""
    said = [
        f"{q_.label.text(lang)}\n{shown_answer(q_, answers[q_.id], lang, gettext)}"
        for q_ in q.questions
        if q_.id in answers
    ]
    return {"report": "\n\n".join(said)}
