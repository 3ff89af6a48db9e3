"""Reporter pages: welcome and new report. Every page works without JavaScript.

The no-JS report is POST-redirect-GET: the new code waits, sealed in the
server-side session, for the one page that shows it (never in a URL), and is
dropped once shown. Sending the same form again, or reloading, is answered
truthfully: the report was already received, and its code was shown once. A
different form whose token no longer holds (a second tab, a form edited after
Back, a session that ended while they wrote) comes back filled in, unsent.

A form sent again while its first send is still at work (a double press, a
reload while the server derives and stores) waits for that send's outcome, which
the session marks (``SENDING``): the browser shows only the last answer, so it
must lead to the code, or give the words back, and never say "received" before
the report is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_wtf.csrf import CSRFError, generate_csrf
from markupsafe import escape

from portal.common import i18n
from portal.common.db import Tx, on_rollback
from portal.common.questionnaire import Questionnaire
from portal.protocol import codes
from portal.protocol.answers import Problem, read
from portal.protocol.reports import seal_on_server
from portal.server import figures
from portal.server.intake import PROBLEMS, copy_words, form_view
from portal.server.mailboxes import MailboxError
from portal.server.spent import spend_within as spend_digest
from portal.server.web import sealed_files, sessions, work
from portal.server.web.requests import SealedUpload
from portal.server.web.services import services
from portal.server.web.work import current_hour
from portal.server.web.work_gate import Busy

bp = Blueprint("reporter", __name__)
RECEIVED = "report-received"
SHOW_CODE = "report-code"  # sealed in the session from the POST to the one GET
SENDING = "report-sending"  # when a no-JS send spent its form, until its outcome is written
# The page (a digest of its form token as posted) whose send stored the session's
# last report; gone from the moment another send of the session begins.
SENT_FROM = "report-sent-from"


class FormSpent(Exception):
    """This very form was sent already (a replay, a reload or a race)."""


def _form_digest(raw: str) -> bytes:
    return hashlib.sha256(b"csrf:" + raw.encode()).digest()


def spend_form_within(t: Tx) -> None:
    """A form's token that sent something is spent, once: its digest goes into the
    spent table inside the caller's transaction, atomically, so the same form posted
    again, even by many requests at once, stores nothing (FormSpent). The token
    leaves the session; it comes back if the transaction rolls back, so a send
    that failed can be sent again.

    A new token takes its place at once, in the same write: the session stays,
    so the next page only signs that token and writes nothing (a session left
    empty would be deleted here and created again by the next page: two more
    commits for every report)."""
    raw = session.get("csrf_token")
    if not isinstance(raw, str):
        raise FormSpent
    session["csrf_token"] = secrets.token_hex(20)  # flask-wtf's raw form: 40 hex digits
    cached = g.pop("csrf_token", None)  # a page shown after this signs the new token

    spent_before = False

    def restore() -> None:
        if spent_before:  # spent by another request: this token stays dead
            return
        session["csrf_token"] = raw
        if cached is not None:
            g.csrf_token = cached

    on_rollback(t, restore)
    if not spend_digest(t, _form_digest(raw), current_hour()):
        spent_before = True
        raise FormSpent


def spend_csrf_token() -> bool:
    """Spend this session's form token in a transaction of its own (see
    :func:`spend_form_within`); False if it was spent already."""
    try:
        services().db.joined(spend_form_within)
    except FormSpent:
        return False
    return True


def _spend_report_form(file_bytes: int) -> bool:
    """Spend the report form's token (as :func:`spend_csrf_token`) and, in the same
    commit, write the session with its new token and the latest this send should
    take (``SENDING``), until its outcome is written: the same form sent again
    meanwhile, which the browser will show instead of this send's answer, waits
    for that outcome (``_after_first_send``). False if it was spent already."""

    def spend(t: Tx) -> None:
        spend_form_within(t)
        session[SENDING] = _send_deadline(file_bytes)
        session.pop(SENT_FROM, None)
        on_rollback(t, lambda: session.pop(SENDING, None))
        sessions.write_within(t)

    try:
        services().db.joined(spend)
    except FormSpent:
        return False
    return True


def _sent(
    q: Questionnaire,
    sent: dict[str, list[str]],
    answers: dict[str, str],
    files: list[SealedUpload],
) -> ResponseReturnValue:
    """Seal and store a report whose form was just spent. Its outcome (stored,
    refused, or an error Flask answers) leaves the session without the
    ``SENDING`` mark; a worker that stops midway leaves it, until its deadline."""
    svc = services()
    lang = i18n.current().code
    try:
        with svc.work_gate.slot():
            sealed = seal_on_server(
                svc.organization,
                q.id,
                q.version,
                q.digest,
                answers,
                [sealed_files.attachment_entry(f) for f in files],
                copy=copy_words(q, answers, lang) if request.form.get("keep_copy") else None,
                lang=lang,
            )
    except Busy:
        # The form comes back filled in, to send again in a moment (files chosen again).
        return _page(q, sent, None, busy=True, **_files_not_kept(files)), 503
    received_before = session.get(RECEIVED)
    session[RECEIVED] = _received_mark(received_before, sent)
    session[SHOW_CODE] = sealed.code
    session[SENT_FROM] = _posted_page()
    session.pop(SENDING)
    try:
        # The report and its session (holding the code until the one page that
        # shows it): one transaction, one commit.
        svc.mailboxes.create(
            sealed.mailbox,
            sealed.envelope,
            attach=sealed_files.register(svc.uploads, files),
            copy=sealed.copy,
            also=(sessions.write_within,),
        )
    except BaseException as exc:
        # Nothing was stored: no code may be shown for it, whatever went wrong.
        session.pop(SHOW_CODE)
        session.pop(SENT_FROM)
        if received_before is None:
            session.pop(RECEIVED)
        else:  # an earlier report's mark stands
            session[RECEIVED] = received_before
        if isinstance(exc, MailboxError):
            return render_template("error.html", message="conflict"), 409
        raise
    sealed_files.keep(files)
    return redirect(url_for("reporter.report_sent"), code=303)


@bp.get("/")
def welcome() -> ResponseReturnValue:
    return render_template("welcome.html", has_figures=_published() is not None)


def _published() -> figures.Figures | None:
    svc = services()
    with svc.db.reading() as s:
        try:
            return figures.shown(s, svc.config.transparency_min)
        except figures.FiguresRefused:
            return None  # kept before a stricter check: show nothing rather than guess


@bp.get("/transparency")
def transparency() -> ResponseReturnValue:
    """What the organization can say about its work, in aggregate, as its desk
    published it: no figure under the threshold, months grouped (figures.py)."""
    return render_template("transparency.html", figures=_published())


@bp.get("/safety")
def safety() -> ResponseReturnValue:
    """Staying safe: Tor Browser, shared devices, the code, what the organization sees."""
    return render_template("safety.html")


def _questionnaire(qid: str | None) -> Questionnaire:
    found = _served(qid)
    if found is None:
        abort(404)
    return found


def _served(qid: str | None) -> Questionnaire | None:
    """The questionnaire ``qid`` names (None: the first), or None if none is served."""
    served = services().questionnaires
    return served[0] if qid is None else next((q for q in served if q.id == qid), None)


def _page(
    q: Questionnaire,
    sent: dict[str, list[str]] | None = None,
    problems: dict[str, Problem] | None = None,
    **extra: object,
) -> str:
    view = form_view(q, i18n.current().code, sent, problems)
    return render_template(
        "report.html", view=view, problems=PROBLEMS, first_work=_first_work, **extra
    )


def _files_not_kept(files: list[SealedUpload]) -> dict[str, str]:
    """A form that comes back unsent keeps its words, but a file input cannot be
    filled in again: the files sent with it are gone, and the page says so."""
    if not files:
        return {}
    return {"file_problem": gettext("Your files were not kept: please choose them again.")}


def _first_work() -> str:
    """A proof-of-work challenge in the page itself, so the browser starts solving
    at once, without a round trip over Tor for it (it asks for the next ones)."""
    return json.dumps(work.issue(), separators=(",", ":"))


_TOKEN_MARK = f"csrf-{secrets.token_hex(16)}"  # where each reader's own token goes
_WORK_MARK = f"work-{secrets.token_hex(16)}"  # and their own first challenge
_BLANK_PAGES_MAX = 256


def _blank_page(q: Questionnaire) -> str:
    """The empty form, the page most readers ask for: the same for everyone who
    reads it in the same language at the same address, but for the form's token.
    It is rendered once and kept; each reader gets their own token in it. (The
    key holds the Host header a reader sent, so the number kept is bounded.)"""
    pages: dict[tuple[str, ...], str] = current_app.extensions.setdefault("blank_pages", {})
    key = (q.digest, i18n.current().code, request.host, request.path)
    page = pages.get(key)
    if page is None:
        view = form_view(q, i18n.current().code)
        page = render_template(
            "report.html",
            view=view,
            problems=PROBLEMS,
            csrf_token=lambda: _TOKEN_MARK,
            first_work=lambda: _WORK_MARK,
        )
        if len(pages) < _BLANK_PAGES_MAX:
            pages[key] = page
    return page.replace(_TOKEN_MARK, generate_csrf()).replace(
        _WORK_MARK, str(escape(_first_work()))
    )


@bp.get("/report")
def new_report() -> ResponseReturnValue:
    """The one questionnaire, or the list to choose from when there are several."""
    served = services().questionnaires
    if len(served) > 1:
        lang = i18n.current().code
        choices = [(q.id, q.title.text(lang), q.intro.text(lang)) for q in served]
        return render_template("report_choose.html", choices=choices)
    return _blank_page(served[0])


@bp.get("/report/<qid>")
def new_report_of(qid: str) -> ResponseReturnValue:
    return _blank_page(_questionnaire(qid))


@bp.post("/report", defaults={"qid": None})
@bp.post("/report/<qid>")
def submit_report(qid: str | None) -> ResponseReturnValue:
    """The no-JavaScript path: seal in memory on arrival, store, show the code once."""
    q = _questionnaire(qid)
    sent = _sent_fields()
    answers, problems = read(q.rules, sent)
    try:
        files = sealed_files.finished_uploads()
    except sealed_files.FileProblem as exc:
        return _page(q, sent, problems, file_problem=str(exc)), 400
    if q.files_question is None:
        files = []  # nothing asked for them: discarded unread with the request
    if problems:
        return _page(q, sent, problems, **_files_not_kept(files)), 400
    # Spent in a commit of its own, before paying for a derivation: of the same form
    # raced from several requests, all but one stop here, and wait for its outcome.
    if not _spend_report_form(sum(f.writer.size for f in files)):
        return _after_first_send(q, sent)
    try:
        return _sent(q, sent, answers, files)
    finally:
        if SENDING in session:  # it failed before its write: the session says so now
            session.pop(SENDING)


# How often a form sent again looks whether the send before it is done, and the
# latest that send should take: its turn at the derivation queue, sealing and the
# write (SETTLE_MARGIN), and hashing its files' ciphertext (HASHED_PER_SECOND, well
# under what one core does). A mark past its deadline is not waited for: its send
# stopped with its worker, or is slower than any send should be (if it then
# stores, the words given back meanwhile could be sent again: a second report).
SETTLE_POLL = 0.1
SETTLE_MARGIN = 5.0
HASHED_PER_SECOND = 50 * 1024 * 1024


def _send_deadline(file_bytes: int) -> int:
    wait = services().work_gate.wait_seconds + SETTLE_MARGIN + file_bytes / HASHED_PER_SECOND
    return int(time.time() + wait) + 1


def _after_first_send(q: Questionnaire, sent: dict[str, list[str]]) -> ResponseReturnValue:
    """This form, sent while another send of this session's form was on its way (a
    double press, a reload while the server sealed): the browser shows only this
    answer, so it is that send's outcome, once known. It stored this form: the
    code, on the page that shows it once. It stored nothing, or another tab's
    form: this one again, filled in, unsent, with a token that holds."""
    stored = _when_sent()
    if stored is None:  # the session ended meanwhile: a new one, and the words back
        sessions.start_over()
        return _page(q, sent, stale=True), 400
    sessions.adopt(stored)
    if hmac.compare_digest(str(session.get(SENT_FROM, "")), _posted_page()):
        # The same page (a double press, a reload): the send it waited for stored
        # a report just now, and is the only one this form is compared with.
        outcome = _stored_last(sent)
    else:
        outcome = _received_before(sent)
    return outcome or (_page(q, sent, stale=True), 400)


def _posted_page() -> str:
    token = request.form.get("csrf_token", "")
    return hashlib.sha256(b"report-page:" + token.encode()).hexdigest()


def _when_sent() -> dict[str, Any] | None:
    """The session as stored once no send of it is on its way (None if it ended)."""
    while True:
        stored = sessions.as_stored()
        deadline = None if stored is None else stored.get(SENDING)
        if not isinstance(deadline, int) or time.time() > deadline:
            return stored
        time.sleep(SETTLE_POLL)


@bp.get("/report/sent")
def report_sent() -> ResponseReturnValue:
    """The new code, shown once; afterwards, the truth that it was."""
    code = session.pop(SHOW_CODE, None)
    if isinstance(code, str):
        return render_template("code.html", code=codes.format_code(code))
    if session.get(RECEIVED):
        return already_received()
    return redirect(url_for("reporter.new_report"), code=303)


def _received_before(sent: dict[str, list[str]]) -> ResponseReturnValue | None:
    """If this form's report was stored (the session says so): its code, if it was
    never shown (the browser dropped the answer that led to it when this form was
    sent again), on the page that shows it once; else the truth that it was
    received. None if it was not stored, or if the session's comparisons are all
    used (see ``COMPARISONS_ALLOWED``)."""
    mark = session.get(RECEIVED)
    if mark is None:
        return None
    if _is_mark(mark) and not _comparison_claimed(mark[0]):
        session.pop(RECEIVED)  # no comparison left with them: forgotten
        return None
    if not _is_received(mark, sent):
        return None
    return _receipt(_is_latest(mark, sent))


def _stored_last(sent: dict[str, list[str]]) -> ResponseReturnValue | None:
    """If this form is the one the session stored last: its receipt. None if not."""
    return _receipt(latest=True) if _is_latest(session.get(RECEIVED), sent) else None


def _receipt(latest: bool) -> ResponseReturnValue:
    """A stored form's answer: the code, if it waits unshown and is this form's
    (the form stored last), on the page that shows it once; else the truth."""
    if latest and isinstance(session.get(SHOW_CODE), str):
        return redirect(url_for("reporter.report_sent"), code=303)
    return already_received()


def already_received() -> ResponseReturnValue:
    """A report sent from this browser, then the same form sent again."""
    return render_template("code.html", code=None, already=True)


@bp.errorhandler(CSRFError)
def _form_sent_again(exc: CSRFError) -> ResponseReturnValue:
    """A report form whose token no longer holds. The same form sent a second time
    (Back, reload, a double press): say what happened to the first one. Another
    form (a second tab sent a report first, or the session ended while they
    wrote), from a browser that says it comes from this portal's own page: show
    it again, filled in, with a token that holds, so nothing they wrote is lost
    and nobody is told it was received when it was not. Anything else is echoed
    nowhere."""
    if request.endpoint != "reporter.submit_report":
        return render_template("error.html", message="csrf"), 400
    sent = _sent_fields()
    q = _served((request.view_args or {}).get("qid"))
    ours = from_own_page()
    if q is not None and ours and SENDING in session:  # a send of this page is on its way
        return _after_first_send(q, sent)
    received = _received_before(sent)
    if received is not None:
        return received
    if q is None or not ours:
        return render_template("error.html", message="csrf"), 400
    # Back to a page the reporter corrected and sent since: "not sent yet" alone
    # would tell someone holding a code that their report never arrived.
    return _page(q, sent, stale=True, received_earlier=bool(session.get(RECEIVED))), 400


def from_own_page() -> bool:
    """Whether the browser says this request came from one of the portal's own
    pages: only then may a refused form's words be echoed back."""
    return request.headers.get("Sec-Fetch-Site") == "same-origin"


def _sent_fields() -> dict[str, list[str]]:
    return {k: request.form.getlist(k) for k in request.form}


MARKS_KEPT = 8  # forms whose reports were stored, remembered per session
# Comparisons of a posted form with the forms this session stored (a double
# press, Back and Send, another tab's form), in all, before the session forgets
# them. A reporter needs one or two. Whoever holds the browser while its session
# lives could otherwise post guess after guess of what was written (few cover a
# questionnaire of choices alone) and read which was sent from the answer. Each
# comparison is claimed first in the spent table, atomically and outside the
# session, so neither a burst of guesses nor a request writing an older copy of
# the session back gets one more.
COMPARISONS_ALLOWED = 6
# The claims are kept this long past the spent table's own two hours (a session
# lives four hours unused): one kept alive by use gets six more each day.
COMPARISONS_KEPT_HOURS = 24


def _comparison_claimed(key: str) -> bool:
    """Claim one of the comparisons of the marks made under ``key``; False once all
    are claimed."""

    def claim(t: Tx) -> bool:
        return any(
            spend_digest(t, _comparison_digest(key, n), current_hour() + COMPARISONS_KEPT_HOURS)
            for n in range(COMPARISONS_ALLOWED)
        )

    return services().db.joined(claim)


def _comparisons_used_up(key: str) -> bool:
    # claimed in order, so the last one claimed means all are
    return services().spent.is_spent(_comparison_digest(key, COMPARISONS_ALLOWED - 1))


def _comparison_digest(key: str, n: int) -> bytes:
    return hashlib.blake2b(f"{key}:{n}".encode(), person=b"portal-rcv-cmp", digest_size=32).digest()


def _received_mark(earlier: object, sent: dict[str, list[str]]) -> list[str]:
    """What the session keeps of the forms whose reports were stored (the last
    ``MARKS_KEPT``): a keyed hash of each one's fields (not their words) and the
    key, sealed with the session, so the same form sent again is told apart from
    another one."""
    parts = [str(part) for part in earlier] if isinstance(earlier, list) else []
    if not _is_mark(earlier) or _comparisons_used_up(parts[0]):
        # (the forms stored before are forgotten: no comparison with them is left)
        parts = [secrets.token_bytes(16).hex()]
    key, digests = parts[0], parts[1:]
    digests = [*digests, _fields_digest(bytes.fromhex(key), sent)][-MARKS_KEPT:]
    return [key, *digests]


def _is_mark(mark: object) -> bool:
    if not isinstance(mark, list) or len(mark) < 2:
        return False
    if not all(isinstance(part, str) for part in mark):
        return False
    try:
        return len(bytes.fromhex(mark[0])) == 16
    except ValueError:
        return False


def _stored_digests(mark: object, sent: dict[str, list[str]]) -> tuple[str, list[str]] | None:
    """``sent``'s digest under the mark's key, and the stored forms' digests (the
    last one stored last); None for a mark this code did not write."""
    if not isinstance(mark, list) or not _is_mark(mark):
        return None
    key, *digests = (str(part) for part in mark)
    return _fields_digest(bytes.fromhex(key), sent), digests


def _is_received(mark: object, sent: dict[str, list[str]]) -> bool:
    found = _stored_digests(mark, sent)
    if found is None:
        return True  # a mark this code did not write: say what it always said
    mine, digests = found
    return any(hmac.compare_digest(mine, digest) for digest in digests)


def _is_latest(mark: object, sent: dict[str, list[str]]) -> bool:
    """Whether ``sent`` is the form stored last (the one whose code waits unshown)."""
    found = _stored_digests(mark, sent)
    return found is not None and hmac.compare_digest(found[0], found[1][-1])


def _fields_digest(key: bytes, sent: dict[str, list[str]]) -> str:
    fields = sorted((k, v) for k, v in sent.items() if k != "csrf_token")
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(canonical, key=key, digest_size=16).hexdigest()
