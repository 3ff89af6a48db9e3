"""How an item's sealed fields are laid out: by the questionnaire it answered.

Inbox bundles carry every questionnaire definition the portal served; the desk
keeps each by digest (``keep``), after checking it as the portal does. A report
seals its questionnaire's digest, so ``lay_out`` finds the very questions the
reporter saw, whatever changed since. A report sealed before questionnaires
existed (no digest) answered the shipped default, version 1. When no definition
is known, every answer is still shown, under its field name: nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from portal.common.languages import N_
from portal.common.questionnaire import (
    DEFAULT_DIR,
    Questionnaire,
    QuestionnaireError,
    parse,
    parse_canonical,
    shown_answer,
)
from portal.desk.store import DeskStore, KnownQuestionnaire

Gettext = Callable[..., str]
FOLLOW_UP_LABELS = {"message": N_("Message"), "answer": N_("Answers")}


@dataclass(frozen=True)
class Row:
    field: str  # the sealed field name (the question's id)
    label: str
    value: str
    section: str = ""  # the section's title, on the first row of a section
    named: bool = True  # False: no definition names it; the label is the field's name


@dataclass(frozen=True)
class Layout:
    title: str  # the questionnaire's title ("" for a message)
    form: str  # "report v1"
    rows: tuple[Row, ...]
    known: bool  # False: the definition never reached this desk


def english(message: str, **values: Any) -> str:
    """The portal's words untranslated (the CLI, case files, tables)."""
    return message % values if values else message


@lru_cache(maxsize=64)
def _parsed(body: bytes) -> Questionnaire:
    return parse_canonical(body)


@lru_cache(maxsize=1)
def _shipped_default() -> Questionnaire:
    return parse((DEFAULT_DIR / "report.json").read_bytes())


def keep(store: DeskStore, digest: str, body: bytes, today: dt.date) -> str | None:
    """Keep a definition an inbox carried; why not, if it is refused."""
    try:
        q = _parsed(body)
    except QuestionnaireError as exc:
        return f"a questionnaire definition was refused: {exc.detail}"
    if q.digest != digest:
        return "a questionnaire definition does not match its name"
    with store.db.transaction() as s:
        if s.get(KnownQuestionnaire, digest) is None:
            s.add(
                KnownQuestionnaire(
                    digest=digest,
                    form=q.id,
                    version=q.version,
                    body=body.decode(),
                    received_on=today,
                )
            )
    return None


def known(store: DeskStore) -> dict[str, Questionnaire]:
    """Every definition this desk has, by digest."""
    with store.db.reading() as s:
        bodies = list(s.execute(select(KnownQuestionnaire.digest, KnownQuestionnaire.body)))
    return {d: _parsed(b.encode()) for d, b in bodies}


def definition_of(
    content: Mapping[str, Any], definitions: Mapping[str, Questionnaire]
) -> Questionnaire | None:
    digest = content.get("form_digest")
    if isinstance(digest, str):
        return definitions.get(digest)
    default = _shipped_default()
    if content.get("form") == default.id and content.get("form_version") == default.version:
        return default
    return None


def lay_out(
    content: Mapping[str, Any],
    definitions: Mapping[str, Questionnaire],
    language: str = "en",
    gettext: Gettext = english,
) -> Layout:
    """An opened item's answers in words, in the questionnaire's order."""
    raw = content.get("fields")
    fields = {str(k): str(v) for k, v in raw.items() if v} if isinstance(raw, dict) else {}
    form = f"{content.get('form', '')} v{content.get('form_version', '')}"
    kind = content.get("kind")
    if isinstance(kind, str) and kind in FOLLOW_UP_LABELS:
        said = gettext(FOLLOW_UP_LABELS[kind])
        return Layout("", form, tuple(Row(k, said, v) for k, v in fields.items()), True)
    q = definition_of(content, definitions)
    if q is None:
        return Layout("", form, tuple(Row(k, k, v, named=False) for k, v in fields.items()), False)
    rows: list[Row] = []
    for section in q.sections:
        title = str(section.title.text(language))
        for question in section.questions:
            if question.id not in fields:
                continue
            value = shown_answer(question, fields.pop(question.id), language, gettext)
            rows.append(Row(question.id, str(question.label.text(language)), str(value), title))
            title = ""
    rows += [Row(k, k, v, named=False) for k, v in fields.items()]  # what it does not ask
    return Layout(str(q.title.text(language)), form, tuple(rows), True)
