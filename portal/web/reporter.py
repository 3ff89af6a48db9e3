"""Reporter pages: welcome and new report. Every page works without JavaScript."""

from __future__ import annotations

import hashlib

from flask import Blueprint, render_template, session
from flask.typing import ResponseReturnValue

from .. import codes
from ..forms import ReportForm
from ..mailboxes import MailboxError
from ..reports import seal_on_server
from . import sealed_files
from .services import services
from .work import current_hour
from .work_gate import Busy

bp = Blueprint("reporter", __name__)


def spend_csrf_token() -> bool:
    """A form's token that sent something is spent, once: its digest goes into the
    spent table atomically, so the same form posted again, even by many requests at
    once, is refused. False if it was spent already."""
    raw = session.pop("csrf_token", None)
    if not isinstance(raw, str):
        return False
    digest = hashlib.sha256(b"csrf:" + raw.encode()).digest()
    return services().spent.spend(digest, current_hour())


@bp.get("/")
def welcome() -> ResponseReturnValue:
    return render_template("welcome.html")


@bp.get("/safety")
def safety() -> ResponseReturnValue:
    """Staying safe: Tor Browser, shared devices, the code, what the organization sees."""
    return render_template("safety.html")


@bp.get("/report")
def new_report() -> ResponseReturnValue:
    return render_template("report.html", form=ReportForm())


@bp.post("/report")
def submit_report() -> ResponseReturnValue:
    """The no-JavaScript path: seal in memory on arrival, store, show the code once."""
    form = ReportForm()
    try:
        files = sealed_files.finished_uploads()
    except sealed_files.FileProblem as exc:
        form.validate()
        return render_template("report.html", form=form, file_problem=str(exc)), 400
    if not form.validate():
        return render_template("report.html", form=form), 400
    if not spend_csrf_token():  # this very form was sent already (a replay or a race)
        return render_template("error.html", message="csrf"), 400
    svc = services()
    try:
        with svc.work_gate.slot():
            sealed = seal_on_server(
                svc.organization,
                form.form_id,
                form.form_version,
                form.report_fields(),
                [sealed_files.attachment_entry(f) for f in files],
            )
    except Busy:
        # Nothing is lost: the form comes back filled in, to send again in a moment.
        return render_template("report.html", form=form, busy=True), 503
    try:
        svc.mailboxes.create(
            sealed.mailbox, sealed.envelope, attach=sealed_files.register(svc.uploads, files)
        )
    except MailboxError:
        return render_template("error.html", message="conflict"), 409
    sealed_files.keep(files)
    return render_template("code.html", code=codes.format_code(sealed.code))
