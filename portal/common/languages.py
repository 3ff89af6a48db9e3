"""The languages the portal speaks, and the marker for text translated where it is shown.

Pure data: the server's Flask-Babel wiring (``portal.common.i18n``) reads it, and
the protocol marks its status labels with ``N_`` without loading Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

COOKIE = "portal_lang"
DEFAULT = "en"


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in the language itself, so a reader finds their own
    direction: str  # "ltr" or "rtl"


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "ltr"),
        Language("fr", "Français", "ltr"),
        Language("es", "Español", "ltr"),
        Language("ar", "العربية", "rtl"),
        Language("fa", "فارسی", "rtl"),
        Language("uk", "Українська", "ltr"),
        Language("ru", "Русский", "ltr"),
        Language("pt", "Português", "ltr"),
        Language("sw", "Kiswahili", "ltr"),
        Language("my", "မြန်မာ", "ltr"),
    )
}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs where it is defined; it is translated
    where it is shown. Shared modules (the desk uses them too) stay free of
    request-bound lazy strings this way."""
    return message
