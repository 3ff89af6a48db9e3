"""JSON endpoints for the browser code. They accept only ciphertext."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from ..envelopes import EnvelopeError, check
from ..mailboxes import MailboxError, MailboxKey
from .reporter import spend_csrf_token
from .services import services

bp = Blueprint("api", __name__, url_prefix="/api")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> ResponseReturnValue:
    return jsonify(error=exc.reason, message=exc.message), exc.status


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "json", "The request must be a JSON object.")
    return body


@bp.post("/reports")
def create_report() -> ResponseReturnValue:
    """A browser-sealed report and the new mailbox's key, as ciphertext."""
    body = json_body()
    if set(body) != {"envelope", "mailbox"}:
        raise ApiError(400, "shape", "The request must hold an envelope and a mailbox key.")
    svc = services()
    try:
        envelope = check(
            body["envelope"],
            svc.organization,
            kinds=("report",),
            sealed_by="browser",
            max_bytes=svc.config.max_envelope_bytes,
        )
        key = MailboxKey.from_json(body["mailbox"])
        svc.mailboxes.create(key, envelope)
    except EnvelopeError as exc:
        status = 413 if exc.reason == "too_large" else 400
        raise ApiError(status, exc.reason, str(exc)) from exc
    except MailboxError as exc:
        raise ApiError(409 if exc.reason == "conflict" else 400, exc.reason, str(exc)) from exc
    spend_csrf_token()
    return jsonify(ok=True), 201
