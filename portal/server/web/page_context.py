"""What every reporter page shows around its content: who runs the portal, in
the reader's language, whether the reader came the safest way, and the way out
(Quick exit)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, abort, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from portal.common import i18n
from portal.common.languages import COOKIE
from portal.server.web import case_session, sessions
from portal.server.web.services import services

bp = Blueprint("page_context", __name__)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrganizationText:
    """A text from the branding folder and the language it is really written in."""

    html: str | Markup
    language: str


def _text(kind: str) -> OrganizationText | None:
    """The branding folder's ``kind`` ("name", "welcome", "guidance") for this reader."""
    found = getattr(services().branding, kind).get(i18n.current().code)
    return OrganizationText(*found) if found else None


def organization_name() -> OrganizationText:
    """The folder's name for the organization, else the one in its key file."""
    return _text("name") or OrganizationText(services().organization.name, "")


def logo() -> dict[str, str] | None:
    found = services().branding.logo
    if found is None:
        return None
    alt = found.alt.get(i18n.current().code) or found.alt.get("en") or ""
    return {"url": url_for("page_context.logo_image", digest=found.digest), "alt": alt}


def onion_notice() -> str | None:
    """The onion address to recommend, when configured and the reader is elsewhere."""
    config = services().config
    if not (config.onion_notice and config.onion_address):
        return None
    host = (request.host or "").rsplit(":", 1)[0].lower()
    return None if host == config.onion_address.lower() else config.onion_address


def code_halves(code: str | None) -> Markup:
    """A code as two halves of three groups, each kept on one line: on a narrow
    screen it breaks 3 + 3, never 5 + 1. The last group, the one a confirmation
    asks for and "your code ending in" names, is underlined: read right to left,
    "the last four digits" could be taken for the leftmost group. Empty halves
    for the browser to fill (static/src/page/report-form.js, showCode)."""
    groups = (code or "").split()
    middle, last = (groups[3:-1], groups[-1]) if len(groups) > 3 else ([], "")
    first = Markup('<span class="code-half">{}</span>').format(" ".join(groups[:3]))
    second = Markup('<span class="code-half">{}<span class="code-last">{}</span></span>').format(
        " ".join(middle) + " " if middle else "", last
    )
    return Markup(" ").join((first, second))


def code_end(digits: str) -> Markup:
    """The last group of a code, named in a sentence ("your code ending in 3918"):
    kept left to right inside right-to-left text."""
    return Markup('<span dir="ltr" class="code-digits">{}</span>').format(digits)


@bp.app_context_processor
def _page_context() -> dict[str, object]:
    return {
        "code_halves": code_halves,
        "code_end": code_end,
        "org_name": organization_name,
        "org_logo": logo,
        "org_text": _text,
        "onion_notice": onion_notice,
        "onion_address": services().config.onion_address,
    }


@bp.get("/organization/logo/<digest>")
def logo_image(digest: str) -> Response:
    found = services().branding.logo
    if found is None or digest != found.digest:
        abort(404)
    # Like every non-build response it is sent no-store: a cached logo is a trace.
    return Response(found.data, mimetype=found.mimetype)


@bp.get("/exit")
def quick_exit() -> ResponseReturnValue:
    """Quick exit, with or without JavaScript: the session ends here (an open case
    closes as Leave closes it, with no hint left behind, and any other token of
    it dies), the browser is told to drop the portal's cookies, storage and
    cache (Chromium keeps even no-store pages for Back until then), and it goes
    on to the outside page. Without JavaScript, Back can bring the portal's
    pages again; they hold no case and no code.

    A GET, as a link must be, so only the reader's own exit acts: a request from
    another site (it carries no session cookie: SameSite=Strict) or a prefetch
    is sent on, and ends and clears nothing. The way out never fails: if ending
    the session does, the browser still leaves, told to drop the cookie that
    names it."""
    response = redirect(services().config.quick_exit_url, code=303)
    if _not_the_readers_own() or not sessions.cookie_sent():
        return response
    try:
        case_session.leave()  # its hint of the working code goes with the session
        sessions.end_line()
        session.clear()  # deleted, and its cookie with it, once the response goes
    except Exception:  # the exit must happen whatever failed here
        sessions.discard_changes()
        sessions.forget_cookie(response)
        log.warning("Quick exit could not end a session; its browser was told to drop it")
    response.headers["Clear-Site-Data"] = '"cache", "cookies", "storage"'
    response.delete_cookie(COOKIE, path="/")  # the language chosen: a trace too
    return response


def _not_the_readers_own() -> bool:
    """A prefetch, or a request another site made (as the browser says)."""
    purpose = request.headers.get("Sec-Purpose", "") + request.headers.get("Purpose", "")
    site = request.headers.get("Sec-Fetch-Site", "none")
    return "prefetch" in purpose or "prerender" in purpose or site not in ("same-origin", "none")
