"""Languages: which one a page speaks, in which direction, and its catalog.

The catalogs are the ``.po`` files under ``portal/translations``; they are read
once at start-up and compiled in memory, so no generated ``.mo`` file can go
stale and nothing is written to disk. The language comes from a session-only
cookie set by the switcher on every page, else from the browser's
``Accept-Language``, else English.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path

import flask_babel
from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, g, request
from flask_babel import Babel, Domain, format_decimal, get_domain, get_locale, gettext
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from portal.common.languages import COOKIE, DEFAULT, LANGUAGES, Language

CATALOG_DIR = Path(__file__).resolve().parent / "translations"


def catalog_path(code: str) -> Path:
    return CATALOG_DIR / code / "LC_MESSAGES" / "messages.po"


def load_catalog(code: str) -> NullTranslations:
    """One language's translations, compiled from its ``.po`` in memory, once per
    process for each version of the file: parsing the ten catalogs cost more
    than the rest of making an app, which the tests do for nearly every test,
    and a desk parsed one again for each referral. A catalog is only read from."""
    path = catalog_path(code)
    try:
        found = path.stat()
    except FileNotFoundError:
        return NullTranslations()
    return _compiled(code, found.st_mtime_ns, found.st_size)


@lru_cache(maxsize=32)
def _compiled(code: str, _mtime_ns: int, _size: int) -> NullTranslations:
    """``code``'s catalog as its file is now (the file's time and size are the key)."""
    with catalog_path(code).open("rb") as fh:
        catalog = read_po(fh, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer)


def select_language() -> str:
    """The switcher's choice, else the browser's preference, else English."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return _preferred(request.headers.get("Accept-Language", ""))


@lru_cache(maxsize=64)
def _preferred(accept_language: str) -> str:
    """The browser's preferred language among ours. Matching a header against every
    language costs more than the rest of a page view's language work, and browsers
    send a handful of distinct headers (Tor Browser sends one per locale), so the
    answer is kept per header: in memory only, 64 at most, never with a request."""
    accepted = parse_accept_header(accept_language, LanguageAccept)
    return accepted.best_match(LANGUAGES, default=DEFAULT) or DEFAULT


_CATALOG = "_portal_catalog"


@contextmanager
def force_locale(code: str) -> Iterator[None]:
    """Flask-Babel's ``force_locale``, which the page's cached catalog follows."""
    with flask_babel.force_locale(code):
        g.pop(_CATALOG, None)
        try:
            yield
        finally:
            g.pop(_CATALOG, None)


def current() -> Language:
    locale = get_locale()
    code = locale.language if locale is not None else DEFAULT
    return LANGUAGES.get(code, LANGUAGES[DEFAULT])


def format_size(size: int) -> str:
    """A byte count in the reader's words and number format ("2,1 Go", "2.1 GB")."""
    one_decimal = "#,##0.#"
    if size >= 1 << 30:
        return str(gettext("%(size)s GB", size=format_decimal(size / (1 << 30), one_decimal)))
    if size >= 1 << 20:
        return str(gettext("%(size)s MB", size=format_decimal(size / (1 << 20), one_decimal)))
    return str(gettext("%(size)s KB", size=format_decimal(max(1, -(-size // 1024)))))


def plural_variants(singular: str, plural: str) -> dict[str, str]:
    """A counted message in each plural category (CLDR: one, few, many, other…) of
    the page's language, "{n}" where the number goes, for the browser to choose
    with Intl.PluralRules as numbers change ("1 second", "2 seconds", "3 ثوانٍ")."""
    locale = get_locale()
    translations = get_domain().get_translations()
    return {
        category: translations.ngettext(singular, plural, n).replace("%(num)s", "{n}")
        for category, n in _one_number_per_category(str(locale) if locale else "").items()
    }


@lru_cache(maxsize=32)
def _one_number_per_category(locale: str) -> dict[str, int]:
    """The first whole number of each plural category of ``locale``'s CLDR rules
    (worked out once per language: it is the same for every page)."""
    rule = Locale.parse(locale).plural_form if locale else (lambda n: "one" if n == 1 else "other")
    out: dict[str, int] = {}
    for n in range(0, 1100):
        out.setdefault(str(rule(n)), n)
    return out


class _CatalogDomain(Domain):  # type: ignore[misc]
    """Serves the catalogs compiled at start-up instead of reading ``.mo`` files."""

    def __init__(self, catalogs: dict[str, NullTranslations]) -> None:
        super().__init__()
        self._catalogs = catalogs

    def get_translations(self) -> NullTranslations:
        return self._catalogs.get(current().code, self._catalogs[DEFAULT])


class _PortalBabel(Babel):  # type: ignore[misc]
    def __init__(self, catalogs: dict[str, NullTranslations]) -> None:
        self._catalogs = catalogs
        super().__init__()

    @cached_property
    def domain_instance(self) -> Domain:
        return _CatalogDomain(self._catalogs)


def install(app: Flask) -> None:
    """Translate pages, messages and errors; say each page's language and direction."""
    catalogs = {code: load_catalog(code) for code in LANGUAGES}
    _PortalBabel(catalogs).init_app(app, default_locale=DEFAULT, locale_selector=select_language)

    def catalog() -> NullTranslations:
        """The page's catalog, found once per request (Flask-Babel looks it up again
        for every string: a page has dozens; see :func:`force_locale`)."""
        found: NullTranslations | None = g.get(_CATALOG)
        if found is None:
            found = catalogs.get(current().code, catalogs[DEFAULT])
            setattr(g, _CATALOG, found)
        return found

    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: catalog().ugettext(s),
        ngettext=lambda s, p, n: catalog().ungettext(s, p, n),
        pgettext=lambda c, s: catalog().upgettext(c, s),
        npgettext=lambda c, s, p, n: catalog().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals.update(
        languages=LANGUAGES, language=current, plural_variants=plural_variants
    )
    app.jinja_env.filters["size"] = format_size

    @app.after_request
    def _content_language(response):  # type: ignore[no-untyped-def]
        if request.blueprint != "relay":
            response.headers["Content-Language"] = current().code
        return response
