"""Relay staff pages at /staff/: carry the inbox out and the outbox in.

They show counts only and never plaintext. They belong to the relay app
(``create_relay_app``), served on a listener of its own: the public app has
no such pages, so no Host header or path reaches them from the public side.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    abort,
    after_this_request,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from portal.protocol.bundles import BundleError
from portal.server.inbox import export_inbox
from portal.server.models import Envelope, OutboxImport
from portal.server.outbox import import_outbox
from portal.server.staff import LoginRefused
from portal.server.web import idle_session, sessions
from portal.server.web.services import services

bp = Blueprint("relay", __name__, url_prefix="/staff")
KEY = "staff"


# What anyone may ask for without being logged in; everything else is refused
# before its body is read (before CSRF checking, which parses forms).
OPEN_ENDPOINTS = frozenset({"relay.dashboard", "relay.login", "home", "static"})


def install(app: Flask) -> None:
    """Refuse every request but the login page's until a staff member logs in.

    Registered before CSRFProtect, so an outbox upload from someone not logged
    in is answered 403 without a byte of it being read or spooled.
    """

    @app.before_request
    def _logged_in_only() -> ResponseReturnValue | None:
        if request.endpoint in OPEN_ENDPOINTS or request.endpoint is None:
            return None  # a page the relay has (login) or has not (404)
        if _current_staff() is not None:
            return None
        return (
            render_template("relay/error.html", message="forbidden"),
            403,
            {"Connection": "close"},
        )

    @app.get("/")
    def home() -> ResponseReturnValue:
        return redirect(url_for("relay.dashboard"))


def _current_staff() -> int | None:
    data = idle_session.fresh(KEY, services().config.staff_idle_seconds)
    if data is None:
        return None
    if not services().staff.exists(int(data["id"])):  # removed since: the session ends
        idle_session.end(KEY)
        return None
    return int(data["id"])


def _counts() -> dict[str, object]:
    with services().db.reading() as s:
        waiting = s.execute(
            select(func.count(), func.coalesce(func.sum(Envelope.size), 0)).where(
                Envelope.acked_on.is_(None)
            )
        ).one()
        last = s.scalars(select(OutboxImport).order_by(OutboxImport.seq.desc())).first()
    return {
        "envelopes": waiting[0],
        "bytes": waiting[1],
        "last_import": last.applied_on.isoformat() if last else None,
        "last_seq": last.seq if last else None,
    }


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    if _current_staff() is None:
        return render_template("relay/login.html")
    return render_template("relay/dashboard.html", counts=_counts())


@bp.post("/login")
def login() -> ResponseReturnValue:
    form = request.form
    try:
        account_id = services().staff.login(
            form.get("name", "")[:64], form.get("passphrase", "")[:256], form.get("totp", "")[:12]
        )
    except LoginRefused as exc:
        message = "locked" if exc.locked else "refused"
        return render_template("relay/login.html", error=message), 403
    session.clear()
    idle_session.begin(KEY, id=account_id)
    return redirect(url_for("relay.dashboard"), code=303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    sessions.end_line()  # a request moving this session to a new token is ended too
    session.clear()  # an empty session is deleted, server-side and in the browser
    return redirect(url_for("relay.dashboard"), code=303)


def _work_path(suffix: str) -> Path:
    work = services().config.data_dir / "relay"
    work.mkdir(mode=0o700, exist_ok=True)
    return work / f"{secrets.token_hex(8)}{suffix}"


@bp.get("/inbox.tar")
def download_inbox() -> ResponseReturnValue:
    svc = services()
    path = _work_path(".tar")
    manifest = export_inbox(svc.mailboxes, svc.organization, path, svc.config.inbox_items)

    @after_this_request
    def _remove(response: Response) -> Response:
        # The open file handle keeps the bytes readable while they are sent.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return response

    return send_file(
        path,
        mimetype="application/x-tar",
        as_attachment=True,
        download_name=f"inbox-{manifest.created}.tar",
        max_age=0,
    )


@bp.post("/outbox")
def upload_outbox() -> ResponseReturnValue:
    if not sessions.alive():  # logged out while the upload came in: nothing is applied
        abort(403)
    upload = request.files.get("outbox")
    if upload is None or not upload.filename:
        return render_template("relay/result.html", refused="Choose an outbox file first."), 400
    svc = services()
    path = _work_path(".tar")
    try:
        upload.save(path)
        result = import_outbox(svc.mailboxes, svc.organization, path, svc.config.transparency_min)
    except BundleError as exc:
        return render_template("relay/result.html", refused=str(exc)), 400
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    purged = svc.mailboxes.purge_acknowledged(svc.config.ack_grace_days)
    return render_template("relay/result.html", result=result, purged=purged)
