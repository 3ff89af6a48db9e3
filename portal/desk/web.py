"""The desk's web interface (``portal desk serve``): local, offline, token-gated.

It listens on 127.0.0.1 only. Every request must carry the random token printed
at launch (first in the URL, then in an HttpOnly cookie). Each browser that
unlocks is one person's session: the keys are opened with that person's own
passphrase (and second factor) into this process's memory, and dropped again
after ``idle_seconds`` without a request, on "Lock", or at once when the person
is removed from the desk (by anyone, in this process or the CLI).

Nothing typed is lost to the lock: a form sent while locked is kept as a
draft sealed to the desk's own public key, and given back after unlocking.
Every POST answers with a redirect (POST/redirect/GET) or, on an error, with
the same page and the words still in it; forms that make something carry a
one-time field, so sending one again makes nothing twice.
"""

from __future__ import annotations

import hmac
import io
import os
import secrets
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from portal.common import headers as security
from portal.common import i18n
from portal.common.assets import load_assets
from portal.common.json_provider import SafeJSONProvider
from portal.common.languages import COOKIE, LANGUAGES
from portal.common.questionnaire import Questionnaire
from portal.common.safe_text import clean_name
from portal.desk import (
    casefile,
    casework,
    keystore,
    layout,
    referrals,
    settings,
    staff,
    stats,
    transparency,
    viewing,
)
from portal.desk import cases as desk_cases
from portal.desk import evidence as desk_files
from portal.desk import replies as desk_replies
from portal.desk.inbox import discard_items
from portal.desk.names import case_name
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.bundles import BundleError
from portal.protocol.organization import fingerprint
from portal.protocol.replies import STATUS_LABELS, STATUSES

TOKEN_COOKIE = "desk_token"  # noqa: S105 - a cookie name
SESSION_COOKIE = "desk_sid"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Visit:
    """One browser's time at the desk: who unlocked it, and their keys while open."""

    person: str
    keys: keystore.DeskKeys | None
    last_seen: float
    shown_once: dict[str, Any] = field(default_factory=dict)  # codes and secrets, PRG


@dataclass
class DeskState:
    """The people at this desk now, in memory only."""

    home: Path
    token: str
    idle_seconds: int
    visits: dict[str, Visit] = field(default_factory=dict)
    texts: casework.TextCache = field(default_factory=casework.TextCache)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def visit(self, sid: str) -> Visit | None:
        """This browser's visit, its keys dropped when idle too long or when its
        person no longer exists on the desk (then the visit ends entirely)."""
        people = {p.name for p in keystore.people(self.home)}
        with self.lock:
            for key in [k for k, v in self.visits.items() if v.person not in people]:
                del self.visits[key]
            found = self.visits.get(sid)
            if found is None:
                return None
            now = time.monotonic()
            if found.keys is not None and now - found.last_seen > self.idle_seconds:
                found.keys = None
                found.shown_once.clear()
            if found.keys is not None:
                found.last_seen = now
            if not any(v.keys is not None for v in self.visits.values()):
                self.texts.clear()
            return found

    def unlock(
        self, sid: str | None, person: str, passphrase: str, code: str, spend: keystore.SpendCode
    ) -> str:
        keys = keystore.unlock(self.home, passphrase, person or None, code or None, spend)
        fresh = secrets.token_urlsafe(24)  # a new visit id at every unlock
        with self.lock:
            self.visits.pop(sid or "", None)
            self.visits[fresh] = Visit(person=keys.person, keys=keys, last_seen=time.monotonic())
        return fresh

    def lock_now(self, sid: str) -> None:
        with self.lock:
            visit = self.visits.get(sid)
            if visit is not None:
                visit.keys = None
                visit.shown_once.clear()
            if not any(v.keys is not None for v in self.visits.values()):
                self.texts.clear()


bp = Blueprint("desk", __name__)


def state() -> DeskState:
    s: DeskState = current_app.extensions["desk"]
    return s


def store() -> DeskStore:
    st: DeskStore = current_app.extensions["desk_store"]
    return st


def sid() -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def visit() -> Visit | None:
    return state().visit(sid())


def _showable(path: str) -> str:
    """``path``, or the nearest page above it that a browser can GET (a form's
    POST-only address sends you back to the page the form is on)."""
    adapter = current_app.url_map.bind("localhost")
    while path not in ("", "/"):
        try:
            adapter.match(path, method="GET")
            return path
        except HTTPException:
            path = path.rsplit("/", 1)[0]
    return url_for("desk.case_list")


def _page_to_return_to() -> str:
    """Where to come back to after unlocking: this page (with its query), or for
    a form sent while locked, the page it is on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    return _showable(request.path)


def _to_unlock() -> WerkzeugResponse:
    return redirect(url_for("desk.home", next=_page_to_return_to()))


def keys() -> keystore.DeskKeys:
    v = visit()
    if v is None or v.keys is None:
        abort(_to_unlock())
    return v.keys


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of any text (a non-ASCII token is simply wrong)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _local(path: str | None) -> str:
    """A page on this desk to go back to after unlocking (never another site, never
    an address that only takes a form)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        base, query = path.partition("?")[::2]
        shown = _showable(base)
        return shown + (f"?{query}" if query and shown == base else "")
    return url_for("desk.case_list")


def _keep_draft(kind: str, case_id: str, text: str, **choices: str) -> None:
    """Keep what was typed while locked, sealed, for the person of this browser
    (``case_id`` as the URL gave it: a name or a prefix works too)."""
    v = visit()
    if v is None or not text.strip():
        return
    try:
        case = desk_cases.resolve(store(), case_id) if case_id else ""
    except desk_cases.CaseError:
        return
    org = keystore.public_organization(state().home)
    casework.save_draft(store(), org, v.person, f"{kind}:{case}", text, choices)


@bp.before_app_request
def _require_launch_token() -> ResponseReturnValue | None:
    expected = state().token
    given = request.args.get("token")
    if given is not None and _same(given, expected):
        response = redirect(request.path)
        response.set_cookie(TOKEN_COOKIE, expected, httponly=True, samesite="Strict")
        return response
    if request.path.startswith("/static/"):
        return None
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    if not _same(cookie, expected):
        return render_template("desk/forbidden.html"), 403
    return None


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _not_here(exc: HTTPException) -> ResponseReturnValue:
    return render_template(
        "desk/message.html",
        title=_("Nothing here"),
        text=_("This page does not exist on the desk, or not for what was sent."),
    ), exc.code or 404


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    v = visit()
    return {"me": v.person if v is not None and v.keys is not None else None}


@bp.get("/language/<code>")
def choose_language(code: str) -> ResponseReturnValue:
    """The desk's pages in another language (a cookie for this browser session)."""
    response = redirect(_local(request.args.get("next")))
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, httponly=True, samesite="Strict")
    return response


# --- unlocking -------------------------------------------------------------------


@bp.get("/")
def home() -> ResponseReturnValue:
    v = visit()
    if v is None or v.keys is None:
        return render_template(
            "desk/unlock.html",
            next=_local(request.args.get("next")),
            known=v.person if v else "",
            idle_locked=v is not None,
            idle_minutes=max(1, state().idle_seconds // 60),
        )
    return redirect(_local(request.args.get("next")))


@bp.post("/unlock")
def unlock() -> ResponseReturnValue:
    target = _local(request.form.get("next"))
    try:
        new_sid = state().unlock(
            sid() or None,
            request.form.get("person", ""),
            request.form.get("passphrase", ""),
            request.form.get("code", ""),
            store().spend_code,
        )
    except keystore.KeystoreError as exc:
        return render_template(
            "desk/unlock.html",
            error=str(exc),
            next=target,
            known=request.form.get("person", ""),
        ), 403
    response = redirect(target, code=303)
    response.set_cookie(SESSION_COOKIE, new_sid, httponly=True, samesite="Strict")
    return response


@bp.post("/lock")
def lock() -> ResponseReturnValue:
    state().lock_now(sid())
    return redirect(url_for("desk.home"), code=303)


# --- cases -----------------------------------------------------------------------


@bp.get("/cases")
def case_list() -> ResponseReturnValue:
    k = keys()
    show = request.args.get("show", "all")
    if show not in (*desk_cases.FILTERS, *STATUSES):
        show = "all"
    chosen = desk_cases.Selection(
        show=show,
        tag=request.args.get("tag", "").strip(),
        assignee=request.args.get("assignee", "").strip(),
        due_by=request.args.get("due_by", "").strip(),
    )
    everything = desk_cases.list_cases(store(), k)
    rows = desk_cases.select_cases(everything, chosen, k.person)
    query = request.args.get("q", "").strip()
    hits = desk_cases.search(store(), k, query, state().texts) if query else []
    return render_template(
        "desk/cases.html",
        rows=rows,
        chosen=chosen,
        query=query,
        hits=hits,
        names={r.case: r.name for r in everything},
        unread_total=sum(1 for r in everything if r.new or r.unread_count),
        tags=sorted({t for r in everything for t in r.tags}, key=str.casefold),
        people=[p.name for p in keystore.people(state().home)],
    )


def _layouts(
    contents: list[dict[str, Any]], extra: dict[str, Questionnaire] | None = None
) -> list[layout.Layout]:
    """Each item's answers in words, in this page's language."""
    definitions = {**layout.known(store()), **(extra or {})}
    return [layout.lay_out(c, definitions, i18n.current().code, _) for c in contents]


def _case_page(case_id: str, *, status: int = 200, **extra: Any) -> ResponseReturnValue:
    k = keys()
    try:
        case = desk_cases.show_case(store(), k, case_id)
    except desk_cases.CaseError:
        abort(404)
    saved_drafts = casework.drafts(store(), k)
    reply = saved_drafts.get(f"reply:{case.case}")
    note = saved_drafts.get(f"note:{case.case}")
    tags = saved_drafts.get(f"tags:{case.case}")
    fresh = casework.unread(store(), k.person)
    return render_template(
        "desk/case.html",
        case=case,
        statuses=STATUSES,
        layouts=_layouts([i.content for i in case.items]),
        languages=LANGUAGES,
        people=[p.name for p in keystore.people(state().home)],
        drafts=saved_drafts,
        reply_text=extra.pop("reply_text", reply.text if reply else ""),
        reply_status=extra.pop("reply_status", reply.choices.get("status", "") if reply else ""),
        note_text=extra.pop("note_text", note.text if note else ""),
        tags_text=tags.text if tags else None,
        next_new=min((c for c in fresh if c != case.case), default=None),
        partners=referrals.partners(store()),
        consented=referrals.consented(case),
        more_new=len(fresh),
        once=secrets.token_hex(16),
        names={c: case_name(c) for c in (case.concerns, *case.witnesses) if c},
        **extra,
    ), status


@bp.get("/cases/<case_id>")
def case_view(case_id: str) -> ResponseReturnValue:
    return _case_page(case_id)


def _resolved(case_id: str) -> str:
    try:
        return desk_cases.resolve(store(), case_id)
    except desk_cases.CaseError:
        abort(404)


@bp.post("/cases/<case_id>/reply")
def case_reply(case_id: str) -> ResponseReturnValue:
    text = request.form.get("text", "")
    v = visit()
    if v is None or v.keys is None:
        _keep_draft("reply", case_id, text, status=request.form.get("status", ""))
        return redirect(url_for("desk.home", next=url_for("desk.case_view", case_id=case_id)), 303)
    status = request.form.get("status") or None
    if status is not None and status not in STATUSES:
        abort(400)
    case = _resolved(case_id)
    try:
        saved = desk_replies.reply(
            store(), v.keys, case, status, text, nonce=request.form.get("once", "")
        )
    except desk_replies.ReplyRefused as exc:
        return _case_page(
            case, status=400, reply_error=str(exc), reply_text=text, reply_status=status or ""
        )
    casework.drop_draft(store(), v.person, f"reply:{case}")
    back = (
        url_for("desk.case_view", case_id=case, again=1)
        if saved.again
        else url_for("desk.case_view", case_id=case, saved=1)
    )
    return redirect(back + "#history", 303)


@bp.post("/cases/<case_id>/work")
def case_work(case_id: str) -> ResponseReturnValue:
    kind = request.form.get("kind", "")
    value: Any = request.form.get("value", "")
    v = visit()
    if v is None or v.keys is None:
        if kind in ("note", "tags"):
            _keep_draft(kind, case_id, str(value))
        return redirect(url_for("desk.home", next=url_for("desk.case_view", case_id=case_id)), 303)
    if kind not in casework.KINDS:
        abort(400)
    case = _resolved(case_id)
    people = [p.name for p in keystore.people(state().home)]
    try:
        done = casework.record(
            store(), v.keys, case, kind, value, people, nonce=request.form.get("once", "")
        )
    except casework.WorkRefused as exc:
        return _case_page(
            case,
            status=400,
            work_error=str(exc),
            work_kind=kind,
            note_text=str(value) if kind == "note" else None,
        )
    if kind in ("note", "tags"):
        casework.drop_draft(store(), v.person, f"{kind}:{case}")
    return redirect(
        url_for("desk.case_view", case_id=case, worked=kind if done else "again") + "#work", 303
    )


@bp.post("/cases/<case_id>/drafts/discard")
def discard_draft(case_id: str) -> ResponseReturnValue:
    """Throw away words kept from before a lock (they are not wanted after all)."""
    k = keys()
    case = _resolved(case_id)
    kind = request.form.get("kind", "")
    if kind in ("reply", "note", "tags"):
        casework.drop_draft(store(), k.person, f"{kind}:{case}")
    return redirect(url_for("desk.case_view", case_id=case), 303)


def _verified_file(
    case_id: str, upload: str
) -> tuple[desk_files.CaseFile, desk_files.Checked, str]:
    try:
        f = desk_cases.case_file(store(), keys(), case_id, upload)
    except desk_cases.CaseError:
        abort(404)
    checked = desk_files.check(store(), f)
    if checked.state != "verified" or checked.sha256 is None:
        abort(
            make_response(
                render_template(
                    "desk/message.html",
                    title=_("This file is not shown"),
                    text=_("This file does not match what the reporter sent, so it is not shown.")
                    if checked.state == "damaged"
                    else _("This file has not been imported yet."),
                ),
                409,
            )
        )
    return f, checked, checked.sha256


@bp.get("/cases/<case_id>/files/<upload>")
def case_file(case_id: str, upload: str) -> ResponseReturnValue:
    """The original file, as a download only (never rendered by this browser)."""
    k = keys()
    f, checked, sha256 = _verified_file(case_id, upload)
    store().custody.append("view", k.person, case=f.case, file=f.upload, sha256=sha256)
    response = current_app.response_class(
        stream_with_context(desk_files.plaintext(store(), f, checked.blob)),
        mimetype="application/octet-stream",
    )
    name = desk_files.download_name(f.case, f.item, f.name)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    response.headers["X-SHA256"] = sha256
    return response


@bp.get("/cases/<case_id>/files/<upload>/view")
def file_view(case_id: str, upload: str) -> ResponseReturnValue:
    """A picture, from a sanitised copy, after a content warning was passed."""
    k = keys()
    f, checked, sha256 = _verified_file(case_id, upload)
    if f.type not in viewing.SANITISABLE:
        abort(404)
    try:
        clean = viewing.sanitise(desk_files.picture(store(), f, checked.blob))
    except viewing.UnsafeImage as exc:
        return render_template(
            "desk/message.html", title=_("This picture cannot be shown safely"), text=str(exc)
        ), 422
    desk_files.remember_location(store(), sha256, clean.location)
    store().custody.append(
        "view", k.person, case=f.case, file=f.upload, sha256=sha256, sanitised=True
    )
    if request.args.get("raw") == "1":
        return send_file(io.BytesIO(clean.data), mimetype=clean.mimetype, max_age=0)
    return render_template(
        "desk/file.html", f=f, clean=clean, case=f.case, name=case_name(f.case), sha256=sha256
    )


# --- importing and exporting -----------------------------------------------------


@bp.get("/import")
def import_inbox() -> ResponseReturnValue:
    keys()
    v = visit()
    result = v.shown_once.get(request.args.get("done", "")) if v else None
    return render_template("desk/import.html", result=result)


@bp.post("/import")
def import_post() -> ResponseReturnValue:
    k = keys()
    upload = request.files.get("inbox")
    if upload is None or not upload.filename:
        return render_template("desk/import.html", error=_("Choose an inbox file first.")), 400
    with tempfile.TemporaryDirectory(dir=store().home) as work:
        path = Path(work) / "inbox.tar"
        upload.save(path)
        if referrals.is_referral(path):
            try:
                opened = referrals.import_referral(store(), k, path)
            except referrals.ReferralRefused as exc:
                return render_template(
                    "desk/import.html",
                    error=_("Referral refused, nothing imported: %(why)s", why=exc),
                ), 400
            return redirect(url_for("desk.referral_view", sha256=opened.sha256[:16]), 303)
        try:
            result = desk_cases.import_inbox(store(), k, path)
        except BundleError as exc:
            return render_template(
                "desk/import.html", error=_("Bundle refused, nothing imported: %(why)s", why=exc)
            ), 400
    v = visit()
    done = secrets.token_urlsafe(8)
    if v is not None:
        v.shown_once[done] = desk_cases.arrivals_by_case(store(), result)
    return redirect(url_for("desk.import_inbox", done=done), 303)


def _scratch() -> str | None:
    """Where plaintext made for a download waits a moment: memory when there is a
    tmpfs, else the desk's own folder (removed as soon as it is sent)."""
    shm = Path("/dev/shm")  # noqa: S108 - only as the parent of a private mkdtemp
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else str(store().home)


@bp.post("/cases/<case_id>/casefile")
def case_file_export(case_id: str) -> ResponseReturnValue:
    """The verifiable case file, as a zip of its folder (see casefile.py)."""
    k = keys()
    case = _resolved(case_id)
    with tempfile.TemporaryDirectory(dir=_scratch()) as work:
        folder = Path(work) / f"case-{case_name(case)}"
        casefile.export_case(store(), k, case, folder)
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(folder.parent).as_posix())
    data.seek(0)
    return send_file(
        data,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"case-{case_name(case)}.zip",
        max_age=0,
    )


@bp.post("/cases/<case_id>/refer")
def case_refer(case_id: str) -> ResponseReturnValue:
    """A referral file for a partner (refused without the reporter's consent)."""
    k = keys()
    case = _resolved(case_id)
    try:
        partner = referrals.find_partner(store(), request.form.get("partner", ""))
        chosen = [int(n) for n in request.form.getlist("item") if n.isdigit()]
        with tempfile.TemporaryDirectory(dir=store().home) as work:
            out = Path(work) / "referral.json"
            referrals.refer(
                store(), k, case, partner, out, note=request.form.get("note", ""), items=chosen
            )
            data = out.read_bytes()  # encrypted to the partner: not plaintext
    except referrals.ReferralRefused as exc:
        return _case_page(case, status=400, refer_error=str(exc))
    return send_file(
        io.BytesIO(data),
        mimetype="application/json",
        as_attachment=True,
        download_name=f"referral-{case_name(case)}.json",
        max_age=0,
    )


@bp.get("/referrals")
def referral_list() -> ResponseReturnValue:
    keys()
    names = {p.organization.verify_kid: p.name for p in referrals.partners(store())}
    return render_template(
        "desk/referrals.html",
        rows=referrals.received(store()),
        names=names,
        partners=referrals.partners(store()),
    )


@bp.get("/referrals/<sha256>")
def referral_view(sha256: str) -> ResponseReturnValue:
    k = keys()
    try:
        opened = referrals.open_received(store(), k, sha256)
    except referrals.ReferralRefused:
        abort(404)
    body_items = opened.body.get("items", [])
    shown = _layouts(body_items, referrals.definitions_in(opened))
    return render_template("desk/referral.html", opened=opened, layouts=shown)


@bp.get("/referrals/<sha256>/files/<int:n>")
def referral_file(sha256: str, n: int) -> ResponseReturnValue:
    """A file a partner sent, as a download only, checked against its SHA-256."""
    k = keys()
    try:
        opened = referrals.open_received(store(), k, sha256)
        data, name = referrals.file_of(opened, n)
    except referrals.ReferralRefused:
        abort(404)
    cleaned = desk_files.safe_name(name, set(), "file")
    return send_file(
        io.BytesIO(data),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"referral-{opened.sha256[:8]}_{n}_{cleaned}",
        max_age=0,
    )


@bp.post("/stats/publish")
def publish_figures() -> ResponseReturnValue:
    k = keys()
    try:
        least = int(request.form.get("min_count", ""), 10)
    except ValueError:
        least = transparency.DEFAULT_MIN
    transparency.publish(store(), k, max(2, least))
    return redirect(url_for("desk.stats_page", published=1), 303)


@bp.get("/damaged")
def damaged_items() -> ResponseReturnValue:
    keys()
    return render_template("desk/damaged.html", rows=store().damaged(), refused=store().refusals())


@bp.post("/damaged/discard")
def discard() -> ResponseReturnValue:
    k = keys()
    try:
        discard_items(store(), request.form.getlist("item"), k.person)
    except KeyError:
        abort(404)
    return redirect(url_for("desk.damaged_items", discarded=1), code=303)


@bp.get("/invite")
def invite() -> ResponseReturnValue:
    k = keys()
    about = request.args.get("case", "")
    concerns = _resolved(about) if about else None
    kept = casework.drafts(store(), k).get(f"invite:{concerns or ''}")
    return render_template(
        "desk/invite.html",
        concerns=concerns,
        name=case_name(concerns) if concerns else "",
        questions=kept.text if kept else "",
        chosen_language=kept.choices.get("language", "en") if kept else "en",
        restored=kept is not None,
        addresses=settings.read(store()),
        once=secrets.token_hex(16),
        languages=LANGUAGES,
    )


@bp.post("/invite")
def invite_post() -> ResponseReturnValue:
    questions = request.form.get("questions", "")
    about = request.form.get("concerns", "")[:32]
    v = visit()
    if v is None or v.keys is None:
        _keep_draft("invite", about, questions, language=request.form.get("language", ""))
        return redirect(url_for("desk.home", next=url_for("desk.invite", case=about or None)), 303)
    language = request.form.get("language", "en")
    if language not in LANGUAGES:
        language = "en"
    concerns = _resolved(about) if about else None
    try:
        made = desk_replies.invite(
            store(),
            v.keys,
            questions,
            concerns=concerns,
            language=language,
            nonce=request.form.get("once", ""),
        )
    except desk_replies.ReplyRefused as exc:
        return render_template(
            "desk/invite.html",
            error=str(exc),
            concerns=concerns,
            name=case_name(concerns) if concerns else "",
            questions=questions,
            once=request.form.get("once", ""),
            languages=LANGUAGES,
            chosen_language=language,
            addresses=settings.read(store()),
        ), 400
    casework.drop_draft(store(), v.person, f"invite:{concerns or ''}")
    if made.code is not None:
        v.shown_once[f"code:{made.mailbox_id}"] = made.code
    return redirect(url_for("desk.invitation", mailbox_id=made.mailbox_id), 303)


@bp.get("/invitations/<mailbox_id>")
def invitation(mailbox_id: str) -> ResponseReturnValue:
    keys()
    v = visit()
    inv = store().invitation(mailbox_id)
    if inv is None:
        abort(404)
    code = v.shown_once.get(f"code:{mailbox_id}") if v else None
    with i18n.force_locale(inv.language or "en"):
        sheet = render_template(
            "desk/_sheet.html",
            addresses=settings.read(store()),
            code=codes.format_code(code) if code else None,
            organization_name=keystore.public_organization(state().home).name,
            direction=LANGUAGES.get(inv.language or "en", LANGUAGES["en"]).direction,
        )
    return render_template(
        "desk/invitation.html",
        inv=inv,
        name=case_name(mailbox_id),
        concerns_name=case_name(inv.concerns) if inv.concerns else "",
        code=code is not None,
        sheet=sheet,
    )


@bp.post("/invitations/<mailbox_id>/forget")
def forget_code(mailbox_id: str) -> ResponseReturnValue:
    keys()
    v = visit()
    if v is not None:
        v.shown_once.pop(f"code:{mailbox_id}", None)
    return redirect(url_for("desk.invitation", mailbox_id=mailbox_id), 303)


@bp.get("/export")
def export() -> ResponseReturnValue:
    keys()
    return render_template("desk/export.html")


@bp.post("/export")
def export_post() -> ResponseReturnValue:
    k = keys()
    with tempfile.TemporaryDirectory(dir=store().home) as work:
        path = Path(work) / "outbox.tar"
        manifest = export_outbox(store(), k, path)
        data = path.read_bytes()
    return send_file(
        io.BytesIO(data),
        mimetype="application/x-tar",
        as_attachment=True,
        download_name=f"outbox-{manifest.extra['seq']}.tar",
        max_age=0,
    )


# --- settings, people and statistics ---------------------------------------------


@bp.get("/settings")
def settings_page() -> ResponseReturnValue:
    keys()
    return render_template("desk/settings.html", values=settings.read(store()))


@bp.post("/settings")
def settings_post() -> ResponseReturnValue:
    k = keys()
    try:
        settings.write(store(), k, {key: request.form.get(key, "") for key in settings.KEYS})
    except settings.SettingRefused as exc:
        return render_template("desk/settings.html", values=request.form, error=str(exc)), 400
    return redirect(url_for("desk.settings_page", saved=1), 303)


@bp.get("/people")
def people_page() -> ResponseReturnValue:
    keys()
    v = visit()
    enrolled = v.shown_once.get(request.args.get("enrolled", "")) if v else None
    return render_template(
        "desk/people.html",
        people=keystore.people(state().home),
        enrolled=enrolled,
        once=secrets.token_hex(16),
    )


def _people_error(message: str) -> ResponseReturnValue:
    return render_template(
        "desk/people.html",
        people=keystore.people(state().home),
        error=message,
        once=secrets.token_hex(16),
        new_name=request.form.get("name", ""),
    ), 400


@bp.post("/people/add")
def person_add() -> ResponseReturnValue:
    k = keys()
    passphrase = request.form.get("passphrase", "")
    if passphrase != request.form.get("again", ""):
        return _people_error(_("The two passphrases differ. Nobody was added."))
    try:
        added = staff.add(
            store(),
            k,
            request.form.get("name", ""),
            passphrase,
            second_factor=request.form.get("second_factor") == "1",
            nonce=request.form.get("once", ""),
        )
    except keystore.KeystoreError as exc:
        return _people_error(str(exc))
    if added is None:
        return redirect(url_for("desk.people_page", added="again"), 303)
    shown = ""
    v = visit()
    if added.enrolment is not None and v is not None:
        shown = secrets.token_urlsafe(8)
        v.shown_once[shown] = {
            "name": added.name,
            "secret": added.enrolment.secret,
            "qr": qr_svg(added.enrolment.uri),
        }
    return redirect(url_for("desk.people_page", added=added.name, enrolled=shown or None), 303)


@bp.get("/people/remove")
def person_remove_confirm() -> ResponseReturnValue:
    keys()
    name = request.args.get("name", "")
    if not keystore.is_person(state().home, name):
        abort(404)
    return render_template("desk/remove_person.html", name=name)


@bp.post("/people/enrolment/forget")
def forget_enrolment() -> ResponseReturnValue:
    keys()
    v = visit()
    if v is not None:
        v.shown_once.pop(request.form.get("shown", ""), None)
    return redirect(url_for("desk.people_page"), 303)


@bp.post("/people/remove")
def person_remove() -> ResponseReturnValue:
    k = keys()
    try:
        gone = staff.remove(store(), k, request.form.get("name", ""))
    except keystore.KeystoreError as exc:
        return _people_error(str(exc))
    return redirect(url_for("desk.people_page", removed=gone), 303)


@bp.post("/people/passphrase")
def person_passphrase() -> ResponseReturnValue:
    k = keys()
    new = request.form.get("new", "")
    if new != request.form.get("again", ""):
        return _people_error(_("The two new passphrases differ. Nothing was changed."))
    try:
        staff.change_passphrase(store(), k, request.form.get("old", ""), new)
    except keystore.KeystoreError as exc:
        return _people_error(str(exc))
    return redirect(url_for("desk.people_page", changed=1), 303)


def qr_svg(uri: str) -> str:
    """A QR code of an enrolment address, as inline SVG made here (no script)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return str(image.to_string(encoding="unicode"))


@bp.get("/stats")
def stats_page() -> ResponseReturnValue:
    k = keys()
    figures = stats.compute(desk_cases.case_facts(store(), k))
    kinds = {"report": _("Reports"), "witness": _("Witnesses")}
    charts = [
        (_("Cases by month"), list(figures.by_month)),
        (_("Cases by kind"), [(kinds.get(k, k), n) for k, n in figures.by_kind]),
        (_("Cases by status"), [(_(STATUS_LABELS[k]), n) for k, n in figures.by_status]),
        (_("Cases by tag"), list(figures.by_tag)),
    ]
    return render_template(
        "desk/stats.html",
        published=transparency.published(store()),
        default_min=transparency.DEFAULT_MIN,
        figures=figures,
        charts=[
            stats.bar_chart(title, rows, label=_("cases"), empty=_("Nothing to show yet."))
            for title, rows in charts
        ],
    )


@bp.get("/stats.csv")
def stats_csv() -> ResponseReturnValue:
    k = keys()
    figures = stats.compute(desk_cases.case_facts(store(), k))
    return current_app.response_class(
        stats.to_csv(figures),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=desk-statistics.csv"},
    )


def create_desk_app(home: Path, token: str | None = None, idle_seconds: int = 900) -> Flask:
    """The desk app for one home; keys are unlocked per visit, in memory."""
    app = Flask(
        __name__, static_folder=str(ROOT / "static"), template_folder=str(ROOT / "templates")
    )
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_NAME="desk_session",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=8 * 1024 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
    )
    app.json = SafeJSONProvider(app)
    desk_store = DeskStore(home)
    org = keystore.public_organization(home)
    app.extensions["desk"] = DeskState(
        home=home, token=token or secrets.token_urlsafe(24), idle_seconds=idle_seconds
    )
    app.extensions["desk_store"] = desk_store
    CSRFProtect(app)
    i18n.install(app)
    assets = load_assets(ROOT / "static")
    app.jinja_env.globals.update(
        organization=org,
        fingerprint=fingerprint(org.encrypt[0].kid),
        assets=assets,
        status_labels=STATUS_LABELS,
    )
    app.jinja_env.filters["clean_name"] = clean_name
    app.register_blueprint(bp)
    security.install(app, tls=False, onion_address=None)
    return app
