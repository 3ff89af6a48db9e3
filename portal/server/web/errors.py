"""Error pages and JSON errors: a clear 4xx in plain words, never a stack trace."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.common.languages import N_

# Every message a reporter can be shown for a failed request, by reason. The
# reasons are stable (the browser code and tests use them); the words are
# translated where they are shown. Reasons not listed here are faults a real
# browser cannot cause and get the plain "bad_request" message.
MESSAGES = {
    "csrf": N_(
        "This form has expired or was already sent. Nothing was stored. "
        "Please go back, reload the page and try again."
    ),
    "conflict": N_("Something went wrong while saving. Nothing was stored. Please try again."),
    "too_large": N_("What you sent is larger than this portal accepts. Nothing was stored."),
    "not_found": N_("There is no page at this address."),
    "method": N_("This page cannot be used that way."),
    "bad_request": N_("The request could not be understood. Nothing was stored."),
    "server": N_(
        "Something went wrong on our side. Nothing you sent was stored in readable form. "
        "Please try again later."
    ),
    "no_case": N_(
        "We could not open a case with this code. Please check each digit and try again."
    ),
    "expired": N_(
        "Your case was closed because nothing happened for a while. Nothing was lost. "
        "Open it again with your newest code."
    ),
    "superseded": N_(
        "Your case was opened again somewhere else, which made a newer code, so the new "
        "code on this page no longer works. Your previous code still works."
    ),
    "rotated": N_(
        "Your case was opened somewhere else and a newer code was confirmed there. "
        "Only that newest code opens your case now."
    ),
    "empty": N_("An empty file cannot be sent."),
    "too_many": N_("You have added as many files as one report can hold."),
    "full": N_(
        "The portal has no room for this file right now. "
        "Nothing you sent is lost; please try again later."
    ),
    "no_upload": N_("This file was not uploaded from this page. Please add it again."),
    "incomplete": N_("The connection dropped while sending a file. It will be sent again."),
    "case_full": N_(
        "Your case already has many messages waiting for the organization to collect. "
        "This one was not sent: please keep it and send it again in a few days."
    ),
    "work": N_(
        "This page could not finish preparing your submission. Nothing was stored. "
        "Please try again."
    ),
}


# The one table from a refusal's reason to its HTTP status; any other reason is 400.
STATUS: dict[str, int] = {
    "expired": 403,  # no open case in this session (never opened, left, or idled out)
    "no_case": 404,
    "no_upload": 404,
    "not_found": 404,
    "method": 405,
    "conflict": 409,  # a one-writer race lost: try again
    "superseded": 409,  # a newer code was made elsewhere; this one was never confirmed
    "rotated": 409,  # a newer code was confirmed elsewhere; this case is closed here
    "part_order": 409,
    "too_large": 413,
    "too_many": 413,
    "case_full": 429,
    "busy": 503,
    "full": 507,  # no room on the server's disk: nothing sent is lost
}


def public_message(reason: str) -> str:
    """The reporter's words for ``reason``, in the page's language."""
    return str(gettext(MESSAGES.get(reason, MESSAGES["bad_request"])))


_REASONS = {404: "not_found", 405: "method", 413: "too_large"}


def _respond(reason: str, status: int) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return jsonify(error=reason, message=public_message(reason)), status
    return render_template(current_app.config["ERROR_TEMPLATE"], message=reason), status


def install(app: Flask, template: str = "error.html") -> None:
    """Answer every failure with ``template`` (or JSON under /api/)."""
    app.config["ERROR_TEMPLATE"] = template

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError) -> ResponseReturnValue:
        return _respond("csrf", 400)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        if status >= 500:
            return _respond("server", status)
        return _respond(_REASONS.get(status, "bad_request"), status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.error(
            "unhandled %s on %s %s",
            type(exc).__name__,
            request.method,
            request.url_rule.rule if request.url_rule else "?",
        )
        return _respond("server", InternalServerError.code)

    app.jinja_env.globals["error_messages"] = MESSAGES
