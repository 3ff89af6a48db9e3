"""Reporter case pages at /case. Without JavaScript the server opens the case in
memory; with it, the same page is enhanced to do everything in the browser.

Every form here is POST-redirect-GET: after opening, confirming or sending, the
browser is sent to ``GET /case``, which shows the open case again from the
session (never a code in a URL), so reloading or going Back never re-sends a
form. Whatever the reporter did last, the page says which code works now.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError

from portal.common import i18n
from portal.protocol import codes
from portal.protocol.answers import without_controls
from portal.protocol.envelopes import follow_up_kind
from portal.protocol.replies import STATUS_LABELS
from portal.protocol.reports import seal_copy, seal_follow_up
from portal.server import casework
from portal.server.mailboxes import MailboxError
from portal.server.web import case_session, sealed_files
from portal.server.web.reporter import from_own_page, spend_csrf_token
from portal.server.web.services import services
from portal.server.web.work_gate import Busy

bp = Blueprint("cases", __name__)

MAX_MESSAGE = 50_000


@bp.app_context_processor
def _labels() -> dict[str, object]:
    return {"status_labels": STATUS_LABELS, "idle_seconds": services().config.case_idle_seconds}


# What just happened takes the focus, so a screen reader hears it first.
_FOCUS = (
    ("mismatch", "last_group"),
    ("newer-here", "superseded"),
    ("newer-elsewhere", "superseded"),
    ("confirmed", "confirmed-notice"),
    ("sent", "message-done-nojs"),
)


def _focus(flashes: set[str], message_error: str | None = None) -> str:
    """The id of the one element an open case's page focuses on arrival."""
    if message_error:
        return "message-error-nojs"
    return next((target for flash, target in _FOCUS if flash in flashes), "case-heading")


def _to_case() -> ResponseReturnValue:
    return redirect(url_for("cases.enter_code"), code=303)


@bp.get("/case")
def enter_code() -> ResponseReturnValue:
    """The open case (opened without JavaScript), or the form to open one."""
    current = case_session.current()
    flashes = {str(m) for m in get_flashed_messages()}
    if current is not None and current.reporter is not None:
        svc = services()
        view = casework.reopen(
            svc.mailboxes, svc.organization, current.mailbox_id, current.reporter
        )
        if view is not None:
            return render_template(
                "case.html",
                view=view,
                case=current,
                new_code=codes.format_code(current.new_code) if current.new_code else None,
                flashes=flashes,
                focus=_focus(flashes),
            )
    return render_template(
        "case.html",
        view=None,
        left=request.args.get("left") is not None,
        closed_hint=case_session.closed_hint(),
        flashes=flashes,
    )


@bp.post("/case")
def open_case() -> ResponseReturnValue:
    """The no-JavaScript opening: derive, unwrap, verify and rotate in memory."""
    svc = services()
    typed = request.form.get("code", "")
    try:
        with svc.work_gate.slot():
            opened = casework.open_with_code(svc.mailboxes, svc.organization, typed[:200])
    except Busy:
        return render_template("case.html", view=None, busy=True), 503
    except casework.CaseNotFound as exc:
        return render_template("case.html", view=None, not_found=True, typo=exc.typo), 404
    record = opened.record
    case_session.start(
        case_session.OpenCase(
            record.mailbox_id,
            record.kind,
            record.generation,
            pending=opened.rotation,
            reporter=opened.reporter,
            new_code=opened.new_code,
            working=codes.last_group(opened.opened_with),
        )
    )
    return _to_case()


@bp.post("/case/confirm")
def confirm_code() -> ResponseReturnValue:
    """Make the new code current once the reporter typed back its last group; the
    case stays open."""
    current = case_session.current()
    if current is None:
        return render_template("case_done.html", outcome="expired"), 403
    rotation = request.form.get("rotation", "")
    if rotation and rotation == current.generation:
        flash("confirmed")  # the same form sent twice: it was confirmed the first time
        return _to_case()
    if current.new_code is None or rotation != current.pending:
        # Another tab of this browser opened the case again: its newer code is
        # the one this session holds now, shown on the next page.
        flash("newer-here" if current.new_code else "newer-elsewhere")
        return _to_case()
    if not casework.group_matches(current.new_code, request.form.get("last_group", "")):
        flash("mismatch")
        return _to_case()
    try:
        services().mailboxes.confirm_rotation(current.mailbox_id, rotation, current.generation)
    except MailboxError as exc:
        if exc.reason == "superseded":  # opened in another browser: its code replaced ours
            case_session.drop_new_code(current)
            flash("newer-elsewhere")
        else:  # and confirmed there: only that code works now
            case_session.end_here()
            flash("rotated")
        return _to_case()
    case_session.confirmed(current, rotation, working=codes.last_group(current.new_code))
    flash("confirmed")
    return _to_case()


@bp.post("/case/message")
def send_message() -> ResponseReturnValue:
    """A follow-up message (or a witness's answer), sealed on arrival: words, files
    or both."""
    text = without_controls(request.form.get("message", ""))
    current = case_session.current()
    if current is None:
        return _unsent("expired", text, 403)
    try:
        files = sealed_files.finished_uploads()
    except sealed_files.FileProblem as exc:
        return _unsent("file_problem", text, 400, current, problem=str(exc))
    # Words, files, or both: a file alone (a photo found later) is a message too.
    if (not text.strip() and not files) or len(text) > MAX_MESSAGE:
        return _unsent("empty_message", text, 400, current)
    svc = services()
    kind = follow_up_kind(current.kind)
    if current.reporter is None:  # opened in the browser: only the browser can seal for it
        return _unsent("expired", text, 403)
    if not spend_csrf_token():  # this very form was sent already (a replay or a race)
        return _unsent("bad_request", text, 400, current)
    entries = [sealed_files.attachment_entry(f) for f in files]
    own = (
        seal_copy(bytes(current.reporter.public_key), kind, {kind: text})
        if request.form.get("keep_copy")
        else None
    )
    try:
        with svc.work_gate.slot():  # the server seals it: the same bound as every no-JS work
            envelope = seal_follow_up(
                svc.organization, kind, text, current.reporter, entries, lang=i18n.current().code
            )
            svc.mailboxes.add_envelope(
                current.mailbox_id,
                envelope,
                attach=sealed_files.register(svc.uploads, files),
                copy=own,
            )
    except Busy:
        return _unsent("busy", text, 503, current)
    except MailboxError as exc:
        if exc.reason == "case_full":
            return _unsent("case_full", text, 429, current)
        return _unsent("expired", text, 403)
    sealed_files.keep(files)
    flash("sent")
    if own is not None:
        flash("copy-kept")  # then not only the organization can read it
    return _to_case()


@bp.errorhandler(CSRFError)
def _form_token_gone(_exc: CSRFError) -> ResponseReturnValue:
    """A case's form whose token no longer holds. A message written in a page
    whose session ended (hours of writing, a case left or opened again in
    another tab) is given back: in the case open in the session now, in its box,
    or, when none is open, with the form that opens the case again, as when the
    case idles out. Nothing written is lost. Only to the portal's own page;
    anything else gets the plain answer and is echoed nowhere. A refused form is
    nobody at work: it keeps no case open."""
    if request.endpoint != "cases.send_message" or not from_own_page():
        return render_template("error.html", message="csrf"), 400
    text = without_controls(request.form.get("message", ""))
    open_now = case_session.peek()
    if open_now is not None:
        return _unsent("stale", text, 400, open_now)
    case_session.current()  # one that idled out closes, and names the code that opens it
    return _unsent("expired", text, 403)


def _unsent(
    outcome: str,
    text: str,
    status: int,
    current: case_session.OpenCase | None = None,
    problem: str = "",
) -> ResponseReturnValue:
    """A message that was not sent, said plainly, its words given back: on the open
    case's page, in the box, ready to send again; or, once the case has closed,
    with the code that still opens it. Files cannot be given back: the page says
    to choose them again."""
    svc = services()
    files_lost = sealed_files.chosen()
    if current is not None and current.reporter is not None:
        view = casework.reopen(
            svc.mailboxes, svc.organization, current.mailbox_id, current.reporter
        )
        if view is not None:
            page = render_template(
                "case.html",
                view=view,
                case=current,
                new_code=codes.format_code(current.new_code) if current.new_code else None,
                flashes=set(),
                focus=_focus(set(), outcome),
                unsent=text,
                message_error=outcome,
                problem=problem,
                files_lost=files_lost,
            )
            return page, status
    page = render_template(
        "case_done.html",
        outcome=outcome,
        unsent=text,
        closed_hint=case_session.closed_hint(),
        files_lost=files_lost,
    )
    return page, status


@bp.post("/case/leave")
def leave_case() -> ResponseReturnValue:
    case_session.leave()
    return redirect(url_for("cases.enter_code", left=1), code=303)
