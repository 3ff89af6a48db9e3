"""Questionnaires the organization writes: loading, checking and reading them.

A questionnaire is one JSON or YAML file (``<branding>/questionnaires/``), checked
against ``questionnaire.schema.json`` (published as docs/questionnaire.schema.json)
and then for what a schema cannot say: ids used once, conditions that point back
at a choice question and name its options, one files question at most, languages
the portal speaks. A bad file stops the portal at start with its name, line and
what is wrong (``QuestionnaireError``).

Each definition has a digest: SHA-256 of its canonical JSON (sorted keys, no
spaces, UTF-8). Reports seal the questionnaire's id, version and digest, and the
desk keeps every definition it is sent by digest, so an old report is always laid
out by the very questions its reporter saw, whatever changed since.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from markupsafe import Markup

from portal.common.errors import NamedError
from portal.common.languages import LANGUAGES, N_
from portal.common.localised import Localised, sanitise
from portal.protocol.answers import (
    APPROXIMATE,
    CHOICE_KINDS,
    UNKNOWN_DATE,
    YES_NO,
    Condition,
    Rule,
    Rules,
)

SCHEMA_PATH = Path(__file__).with_name("questionnaire.schema.json")
DEFAULT_DIR = Path(__file__).with_name("questionnaires")
SUFFIXES = (".json", ".yaml", ".yml")
MAX_FILE_BYTES = 512 * 1024
MAX_QUESTIONNAIRES = 20
DEFAULT_MAX_LENGTH = {"short_text": 500, "long_text": 10_000}
# libyaml's parser when PyYAML has it (its wheels do): the same nodes, ten times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Names and ids of the report page's own inputs and parts, and names a form
# element or a script object answers to itself (form.reset, obj.constructor).
RESERVED = frozenset(
    {"csrf_token", "keep_copy", "files", "form", "questionnaire", "main", "busy"}
    | {"action", "method", "target", "encoding", "enctype", "elements", "length", "name", "id"}
    | {"reset", "submit", "dataset", "style", "title", "lang", "dir", "hidden", "children"}
    | {"attributes", "autocomplete", "constructor", "prototype", "valueof", "tostring"}
)
_INT = re.compile(r"\A-?[0-9]+\Z")
_FLOAT = re.compile(r"\A-?[0-9]+\.[0-9]+\Z")


class QuestionnaireError(NamedError, ValueError):
    """A questionnaire the portal will not serve: the message says where and why."""

    REASON = "questionnaire"


@dataclass(frozen=True)
class Option:
    id: str
    label: Localised


@dataclass(frozen=True)
class Question:
    rule: Rule
    label: Localised
    help: Localised
    options: tuple[Option, ...] = ()

    @property
    def id(self) -> str:
        return self.rule.id

    def choice_label(self, value: str) -> Localised | None:
        """The words for one of this question's choices, None if it has no such choice."""
        if self.rule.kind == "yes_no":
            return None  # the portal's own words: see YES_NO_LABELS where shown
        return next((o.label for o in self.options if o.id == value), None)


@dataclass(frozen=True)
class Section:
    title: Localised
    intro: Localised
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Questionnaire:
    id: str
    version: int
    title: Localised
    intro: Localised
    order: int
    sections: tuple[Section, ...]
    canonical: bytes  # what the digest is of; what travels to the desk

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical).hexdigest()

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for s in self.sections for q in s.questions)

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)

    @property
    def rules(self) -> Rules:
        return Rules(self.id, self.version, self.digest, tuple(q.rule for q in self.questions))

    @property
    def files_question(self) -> Question | None:
        return next((q for q in self.questions if q.rule.kind == "files"), None)


# ---- reading a file, with the line of every value ---------------------------------


Path_ = tuple[str | int, ...]


def _scalar(node: yaml.ScalarNode) -> object:
    """YAML 1.2's plain scalars only: "yes" and "no" stay text (they are option ids)."""
    value = node.value
    if node.style:  # quoted or a block: text (plain is None, or "" from libyaml)
        return value
    if value in ("true", "false"):
        return value == "true"
    if value in ("null", "~", ""):
        return None
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def _from_node(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> object:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise QuestionnaireError(f"line {key_node.start_mark.line + 1}: a key must be text")
            if key in out:
                raise QuestionnaireError(
                    f"line {key_node.start_mark.line + 1}: {key!r} is given twice"
                )
            out[key] = _from_node(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_from_node(item, (*path, i), lines) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    raise QuestionnaireError(f"line {node.start_mark.line + 1}: unsupported YAML")


MAX_DEPTH = 12  # a questionnaire nests six deep; anything far deeper is an attack


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise QuestionnaireError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuestionnaireError("not UTF-8") from exc


def _refuse_aliases_and_depth(text: str) -> None:
    """One pass over the parser's events (which keep their own stack) before any
    tree is built: anchors and aliases (a few lines could expand to billions of
    nodes) and deep nesting are refused."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise QuestionnaireError(f"line {line}: anchors and aliases are not allowed")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise QuestionnaireError(f"line {line}: nested more than {MAX_DEPTH} deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _parse(raw: bytes) -> tuple[object, dict[Path_, int]]:
    text = _decode(raw)
    lines: dict[Path_, int] = {}
    try:
        _refuse_aliases_and_depth(text)
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise QuestionnaireError(f"{where}not valid YAML or JSON: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise QuestionnaireError(f"not valid YAML or JSON: {exc}") from exc
    if node is None:
        raise QuestionnaireError("line 1: the file is empty")
    return _from_node(node, (), lines), lines


def _no_twice(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise QuestionnaireError("a key is given twice")
    return out


def _refuse_constant(name: str) -> object:
    raise QuestionnaireError(f"{name} is not a number a questionnaire can hold")


def _line(lines: Mapping[Path_, int], path: Iterable[str | int]) -> int:
    path = tuple(path)
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def _where(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the file"


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _check_schema(doc: Any, lines: Mapping[Path_, int]) -> None:
    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    if error is None:
        return
    path = tuple(error.absolute_path)
    raise QuestionnaireError(f"line {_line(lines, path)}: {_where(path)}: {_schema_words(error)}")


def _schema_words(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key")
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return "a text must be a string, or an object of language: string with English (en)"
    if error.validator in ("not", "if", "then", "else", "allOf"):
        return "a key that does not belong to this type of question, or one it needs is missing"
    return error.message


# ---- from a checked document to a Questionnaire -------------------------------------


class _Builder:
    def __init__(self, lines: Mapping[Path_, int]) -> None:
        self.lines = lines

    def fail(self, path: Path_, why: str) -> QuestionnaireError:
        return QuestionnaireError(f"line {_line(self.lines, path)}: {_where(path)}: {why}")

    def text(self, value: object, path: Path_, html: bool = False) -> Localised:
        if value is None:
            return Localised()
        texts = {"en": value} if isinstance(value, str) else dict(value)  # type: ignore[call-overload]
        for code in texts:
            if code not in LANGUAGES:
                raise self.fail((*path, code), f"the portal does not speak {code!r}")
        return Localised(
            {
                code: sanitise(str(t)) if html else str(t).strip()
                for code, t in texts.items()
                if str(t).strip()
            }
        )

    def question(self, raw: Mapping[str, Any], path: Path_, seen: dict[str, Rule]) -> Question:
        qid, kind = raw["id"], raw["type"]
        if qid in seen:
            raise self.fail((*path, "id"), f"the id {qid!r} is used twice")
        if qid in RESERVED:
            raise self.fail((*path, "id"), f"{qid!r} is a name the report page uses itself")
        options = tuple(
            Option(o["id"], self.text(o["label"], (*path, "options", i, "label")))
            for i, o in enumerate(raw.get("options", ()))
        )
        option_ids = [o.id for o in options]
        if len(set(option_ids)) != len(option_ids):
            raise self.fail((*path, "options"), "an option id is used twice")
        lo, hi = raw.get("min"), raw.get("max")
        if lo is not None and hi is not None and lo > hi:
            raise self.fail((*path, "min"), "min is larger than max")
        rule = Rule(
            id=qid,
            kind=kind,
            required=bool(raw.get("required", False)),
            max_length=int(raw.get("max_length", DEFAULT_MAX_LENGTH.get(kind, 0))),
            minimum=lo,
            maximum=hi,
            integer=bool(raw.get("integer", False)),
            options=tuple(option_ids),
            show_if=self.condition(raw.get("show_if"), (*path, "show_if"), seen),
        )
        if kind == "files" and rule.show_if is not None:
            raise self.fail((*path, "show_if"), "files cannot depend on an answer: ask always")
        seen[qid] = rule
        return Question(
            rule=rule,
            label=self.text(raw["label"], (*path, "label")),
            help=self.text(raw.get("help"), (*path, "help"), html=True),
            options=options,
        )

    def condition(self, raw: object, path: Path_, seen: Mapping[str, Rule]) -> Condition | None:
        if raw is None:
            return None
        assert isinstance(raw, dict)  # the schema said so
        target = seen.get(raw["question"])
        if target is None:
            raise self.fail((*path, "question"), "a condition must name a question before this one")
        if target.kind not in CHOICE_KINDS:
            raise self.fail(
                (*path, "question"), "a condition must name a choice or yes/no question"
            )
        for i, value in enumerate(raw["is"]):
            if value not in target.choices:
                raise self.fail((*path, "is", i), f"{value!r} is not one of {target.id}'s answers")
        return Condition(target.id, tuple(raw["is"]))


@lru_cache(maxsize=64)
def parse(raw: bytes) -> Questionnaire:
    """A questionnaire from a file's bytes (JSON or YAML, as the organization wrote
    it); QuestionnaireError says what is wrong and where. The result is frozen, so
    the same bytes are checked once per process."""
    doc, lines = _parse(raw)
    return _build(doc, lines)


def _build(doc: object, lines: Mapping[Path_, int]) -> Questionnaire:
    _check_schema(doc, lines)
    assert isinstance(doc, dict)
    build = _Builder(lines)
    seen: dict[str, Rule] = {}
    sections = tuple(
        Section(
            title=build.text(s.get("title"), ("sections", si, "title")),
            intro=build.text(s.get("intro"), ("sections", si, "intro"), html=True),
            questions=tuple(
                build.question(q, ("sections", si, "questions", qi), seen)
                for qi, q in enumerate(s["questions"])
            ),
        )
        for si, s in enumerate(doc["sections"])
    )
    files = [q.id for s in sections for q in s.questions if q.rule.kind == "files"]
    if len(files) > 1:
        raise QuestionnaireError(f"only one files question is possible, not {len(files)}")
    if len(seen) > 100:
        raise QuestionnaireError("more than 100 questions")
    return Questionnaire(
        id=doc["id"],
        version=doc["version"],
        title=build.text(doc["title"], ("title",)),
        intro=build.text(doc.get("intro"), ("intro",), html=True),
        order=int(doc.get("order", 100)),
        sections=sections,
        canonical=canonical(doc),
    )


def canonical(doc: object) -> bytes:
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QuestionnaireError("a text holds a lone surrogate, which is not text") from exc


@lru_cache(maxsize=64)
def parse_canonical(data: bytes) -> Questionnaire:
    """A definition as it travels (inbox bundles, referrals): JSON only, never YAML,
    and canonical already, so its digest is the digest of these very bytes. Hostile
    input (deep nesting, duplicate keys, NaN, a wrong shape) is a QuestionnaireError."""
    try:
        doc = json.loads(
            _decode(data), object_pairs_hook=_no_twice, parse_constant=_refuse_constant
        )
        found = _build(doc, {})
    except QuestionnaireError:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        raise QuestionnaireError(f"not a questionnaire definition: {type(exc).__name__}") from exc
    if found.canonical != data:
        raise QuestionnaireError("not in canonical form")
    return found


def load_folder(folder: Path | None) -> tuple[Questionnaire, ...]:
    """Every questionnaire in ``folder`` (the shipped default when there is none),
    in the order reporters see them; QuestionnaireError names the file and line."""
    chosen = folder if folder is not None and folder.is_dir() else DEFAULT_DIR
    paths = sorted(p for p in chosen.iterdir() if p.suffix in SUFFIXES and p.is_file())
    if not paths:
        chosen, paths = DEFAULT_DIR, sorted(DEFAULT_DIR.glob("*.json"))
    if len(paths) > MAX_QUESTIONNAIRES:
        raise QuestionnaireError(f"{chosen}: more than {MAX_QUESTIONNAIRES} questionnaires")
    found: dict[str, Questionnaire] = {}
    for path in paths:
        try:
            q = parse(path.read_bytes())
        except QuestionnaireError as exc:
            raise QuestionnaireError(f"{path.name}, {exc.detail}") from exc
        try:
            parse_canonical(q.canonical)  # what the desk will read: it must read it too
        except QuestionnaireError as exc:
            raise QuestionnaireError(
                f"{path.name}: would not reach the desk: {exc.detail}"
            ) from exc
        if q.id in found:
            raise QuestionnaireError(f"{path.name}: the id {q.id!r} is used by another file")
        found[q.id] = q
    return tuple(sorted(found.values(), key=lambda q: (q.order, q.id)))


# ---- showing an answer ---------------------------------------------------------------

YES_NO_WORDS = {"yes": N_("Yes"), "no": N_("No"), "prefer_not": N_("Prefer not to say")}
DATE_WORDS = {"unknown": N_("I don't remember"), "approximately": N_("approximately %(date)s")}


def shown_answer(question: Question, value: str, language: str, gettext: Any) -> str | Markup:
    """An answer in words, in ``language`` (option labels from the definition; the
    portal's own words through ``gettext``)."""
    kind = question.rule.kind
    if kind == "yes_no":
        return str(gettext(YES_NO_WORDS[value])) if value in YES_NO else value
    if kind in ("single_choice", "multiple_choice"):
        words = []
        for part in value.split(" ") if kind == "multiple_choice" else [value]:
            label = question.choice_label(part)
            words.append(str(label.text(language)) if label else part)
        return "; ".join(words)
    if kind == "date":
        if value == UNKNOWN_DATE:
            return str(gettext(DATE_WORDS["unknown"]))
        if value.startswith(APPROXIMATE):
            return str(gettext(DATE_WORDS["approximately"], date=value[1:]))
    return value
