"""The language switcher: plain links that work without JavaScript.

The choice lives in a session-only cookie (gone when the browser closes) and
the reader is sent back to the reporter page they were on. Only known pages
are accepted as the way back, so the switcher cannot be used to redirect
anyone elsewhere.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask.typing import ResponseReturnValue

from portal.common.languages import COOKIE, LANGUAGES
from portal.server.web.services import services

bp = Blueprint("language", __name__)

RETURN_ENDPOINTS = (
    "reporter.welcome",
    "reporter.new_report",
    "cases.enter_code",
    "reporter.safety",
)


def return_path(path: str | None) -> str:
    """``path`` if it is one of the reporter's pages, else the welcome page."""
    allowed = {url_for(endpoint) for endpoint in RETURN_ENDPOINTS}
    if path in allowed:
        return path
    # The case's POST-only pages (/case/confirm, …) come back to the code form.
    case = url_for("cases.enter_code")
    return case if path and path.startswith(case + "/") else url_for("reporter.welcome")


@bp.get("/language/<code>")
def choose(code: str) -> ResponseReturnValue:
    if code not in LANGUAGES:
        abort(404)
    response = redirect(return_path(request.args.get("next")), code=303)
    response.set_cookie(
        COOKIE,
        code,
        httponly=True,
        samesite="Strict",
        secure=services().config.tls,
    )
    return response
