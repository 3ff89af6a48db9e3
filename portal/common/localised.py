"""Texts an organization writes in several languages, and the HTML it may use.

Shared by the branding folder (``portal.server.branding``) and questionnaires
(``portal.common.questionnaire``), which the desk reads too: one fallback rule
(the reader's language, else English) and one allow-list. The HTML is written by
the organization but shown on pages a person in danger trusts, so it is cleaned
with bleach: no script, no style, no images, no forms, links to https only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import bleach
from markupsafe import Markup

ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "h2", "h3", "blockquote", "a"}
)
ALLOWED_ATTRIBUTES = {"a": ["href"]}
ALLOWED_PROTOCOLS = frozenset({"https"})
FALLBACK = "en"


def sanitise(html: str) -> Markup:
    """The organization's HTML reduced to the allow-list; everything else removed."""
    cleaned = bleach.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )
    return Markup(cleaned.strip())  # noqa: S704 - cleaned by bleach just above


@dataclass(frozen=True)
class Localised:
    """A text in several languages: the reader's, else English."""

    by_language: Mapping[str, str | Markup] = field(default_factory=dict)

    def get(self, language: str) -> tuple[str | Markup, str] | None:
        """The text and the language it is really in, or None."""
        for code in (language, FALLBACK):
            if code in self.by_language:
                return self.by_language[code], code
        return None

    def text(self, language: str) -> str | Markup:
        """The text in ``language`` or English; empty when there is none."""
        found = self.get(language)
        return found[0] if found else ""
