"""The organization's own words and logo, from a configuration folder.

The folder (``PORTAL_BRANDING``, default ``keys/branding``) may hold::

    branding.json       {"name": {"en": "…", "ar": "…"}, "logo": "logo.png",
                         "logo_alt": {"en": "…"}}      (name may be one string)
    welcome.<lang>.html  shown on the welcome page
    guidance.<lang>.html shown on the "staying safe" page

Everything is optional. The HTML is cleaned to the allow-list of
``portal.common.localised``: no script, no style, no images, no forms, links
to https only. Questionnaires live in ``questionnaires/`` beside these
(``portal.common.questionnaire``).
The logo must be a PNG, JPEG or WebP (an SVG could carry script).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from portal.common.errors import NamedError
from portal.common.localised import FALLBACK, Localised, sanitise

MAX_TEXT_BYTES = 64 * 1024
MAX_LOGO_BYTES = 512 * 1024
LOGO_TYPES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"RIFF": "image/webp",
}
TEXTS = ("welcome", "guidance")


class BrandingError(NamedError, ValueError):
    """The branding folder holds something the portal will not show."""

    REASON = "branding"


@dataclass(frozen=True)
class Logo:
    data: bytes
    mimetype: str
    alt: Mapping[str, str]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]


@dataclass(frozen=True)
class Branding:
    name: Localised = field(default_factory=Localised)
    welcome: Localised = field(default_factory=Localised)
    guidance: Localised = field(default_factory=Localised)
    logo: Logo | None = None


def _localised_strings(value: object, what: str) -> Localised:
    if isinstance(value, str):
        return Localised({FALLBACK: value.strip()})
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return Localised({k: v.strip() for k, v in value.items() if v.strip()})
    raise BrandingError(f"{what} must be a string or an object of language: string")


def _read_texts(folder: Path, kind: str) -> Localised:
    texts: dict[str, str | Markup] = {}
    for path in sorted(folder.glob(f"{kind}.*.html")):
        language = path.name[len(kind) + 1 : -len(".html")]
        raw = path.read_bytes()
        if len(raw) > MAX_TEXT_BYTES:
            raise BrandingError(f"{path.name} is larger than {MAX_TEXT_BYTES} bytes")
        try:
            texts[language] = sanitise(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BrandingError(f"{path.name} is not UTF-8") from exc
    return Localised(texts)


def _read_logo(folder: Path, name: object, alt: object) -> Logo | None:
    if name is None:
        return None
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        raise BrandingError("logo must be a file name inside the branding folder")
    data = (folder / name).read_bytes()
    if len(data) > MAX_LOGO_BYTES:
        raise BrandingError(f"the logo is larger than {MAX_LOGO_BYTES} bytes")
    for magic, mimetype in LOGO_TYPES.items():
        if data.startswith(magic) and (mimetype != "image/webp" or data[8:12] == b"WEBP"):
            alt_texts = _localised_strings(alt, "logo_alt") if alt is not None else Localised()
            return Logo(data, mimetype, {k: str(v) for k, v in alt_texts.by_language.items()})
    raise BrandingError("the logo must be a PNG, JPEG or WebP image")


def load_branding(folder: Path | None) -> Branding:
    """The branding in ``folder``, or none when there is no folder."""
    if folder is None or not folder.is_dir():
        return Branding()
    settings: dict[str, object] = {}
    settings_path = folder / "branding.json"
    if settings_path.exists():
        try:
            loaded = json.loads(settings_path.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BrandingError(f"branding.json is not valid JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise BrandingError("branding.json must hold an object")
        settings = loaded
    name = settings.get("name")
    return Branding(
        name=_localised_strings(name, "name") if name is not None else Localised(),
        welcome=_read_texts(folder, "welcome"),
        guidance=_read_texts(folder, "guidance"),
        logo=_read_logo(folder, settings.get("logo"), settings.get("logo_alt")),
    )
