"""Reporter case pages at /case. Without JavaScript the server opens the case in
memory; with it, the same page is enhanced to do everything in the browser."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .. import casework, codes
from ..forms import without_controls
from ..mailboxes import MailboxError
from ..replies import STATUS_LABELS
from ..reports import seal_follow_up
from . import case_session, sealed_files
from .reporter import spend_csrf_token
from .services import services
from .work_gate import Busy

bp = Blueprint("cases", __name__)

MAX_MESSAGE = 50_000


@bp.app_context_processor
def _labels() -> dict[str, object]:
    return {"status_labels": STATUS_LABELS, "idle_seconds": services().config.case_idle_seconds}


@bp.get("/case")
def enter_code() -> ResponseReturnValue:
    return render_template("case.html", opened=None)


@bp.post("/case")
def open_case() -> ResponseReturnValue:
    """The no-JavaScript opening: derive, unwrap, verify and rotate in memory."""
    svc = services()
    typed = request.form.get("code", "")
    try:
        with svc.work_gate.slot():
            opened = casework.open_with_code(svc.mailboxes, svc.organization, typed[:200])
    except Busy:
        return render_template("case.html", opened=None, busy=True), 503
    except casework.CaseNotFound:
        return render_template("case.html", opened=None, not_found=True), 404
    record = opened.record
    case_session.start(
        case_session.OpenCase(
            record.mailbox_id,
            record.kind,
            record.generation,
            pending=opened.rotation,
            reporter=opened.reporter,
        )
    )
    return render_template(
        "case.html",
        opened=opened,
        new_code=codes.format_code(opened.new_code),
        status_history=casework.status_history(opened),
        follow_up=casework.follow_up_kind(opened.record),
    )


@bp.post("/case/confirm")
def confirm_code() -> ResponseReturnValue:
    """Make the new code current once the reporter typed back its last group."""
    current = case_session.current()
    new_code = request.form.get("new_code", "")
    rotation = request.form.get("rotation", "")
    if current is None:
        return render_template("case_done.html", outcome="expired"), 403
    try:
        digits = codes.normalise(new_code)
    except codes.CodeError:
        return render_template("case_done.html", outcome="bad_request"), 400
    if not casework.group_matches(digits, request.form.get("last_group", "")):
        return render_template(
            "case_confirm_again.html",
            new_code=codes.format_code(digits),
            rotation=rotation,
            mismatch=True,
        ), 400
    try:
        svc = services()
        svc.mailboxes.confirm_rotation(current.mailbox_id, rotation)
    except MailboxError:
        return render_template("case_done.html", outcome="superseded"), 409
    case_session.confirmed(current, rotation)
    return render_template("case_done.html", outcome="confirmed")


@bp.post("/case/message")
def send_message() -> ResponseReturnValue:
    """A follow-up message (or a witness's answer), sealed on arrival."""
    text = str(without_controls(request.form.get("message", "")))
    current = case_session.current()
    if current is None:
        return render_template("case_done.html", outcome="expired", unsent=text), 403
    if not text.strip() or len(text) > MAX_MESSAGE:
        return render_template("case_done.html", outcome="empty_message", unsent=text), 400
    try:
        files = sealed_files.finished_uploads()
    except sealed_files.FileProblem as exc:
        return render_template(
            "case_done.html", outcome="file_problem", problem=str(exc), unsent=text
        ), 400
    svc = services()
    kind = "answer" if current.kind == "invitation" else "message"
    if current.reporter is None:  # opened in the browser: only the browser can seal for it
        return render_template("case_done.html", outcome="expired", unsent=text), 403
    if not spend_csrf_token():  # this very form was sent already (a replay or a race)
        return render_template("case_done.html", outcome="bad_request", unsent=text), 400
    entries = [sealed_files.attachment_entry(f) for f in files]
    try:
        with svc.work_gate.slot():  # the server seals it: the same bound as every no-JS work
            envelope = seal_follow_up(svc.organization, kind, text, current.reporter, entries)
            svc.mailboxes.add_envelope(
                current.mailbox_id, envelope, attach=sealed_files.register(svc.uploads, files)
            )
    except Busy:
        return render_template("case_done.html", outcome="busy", unsent=text), 503
    except MailboxError as exc:
        outcome = "case_full" if exc.reason == "case_full" else "expired"
        return render_template("case_done.html", outcome=outcome, unsent=text), 403
    sealed_files.keep(files)
    return render_template("case_done.html", outcome="sent")


@bp.post("/case/leave")
def leave_case() -> ResponseReturnValue:
    case_session.leave()
    return redirect(url_for("cases.enter_code", left=1), code=303)
