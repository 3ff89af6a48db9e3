"""Error pages and JSON errors: a clear 4xx in plain words, never a stack trace."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

MESSAGES = {
    "csrf": "This form has expired or was already sent. Nothing was stored. "
    "Please go back, reload the page and try again.",
    "conflict": "Something went wrong while saving. Nothing was stored. Please try again.",
    "too_large": "What you sent is larger than this portal accepts. Nothing was stored.",
    "not_found": "There is no page at this address.",
    "method": "This page cannot be used that way.",
    "bad_request": "The request could not be understood. Nothing was stored.",
    "server": "Something went wrong on our side. Nothing you sent was stored in readable form. "
    "Please try again later.",
}

_REASONS = {404: "not_found", 405: "method", 413: "too_large"}


def _respond(reason: str, status: int) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return jsonify(error=reason, message=MESSAGES[reason]), status
    return render_template("error.html", message=reason), status


def install(app: Flask) -> None:
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
