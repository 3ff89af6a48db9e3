"""The desk's web interface (``portal desk serve``): local, offline, token-gated.

It listens on 127.0.0.1 only. Every request must carry the random token printed
at launch (first in the URL, then in an HttpOnly cookie). The keys are unlocked
into this process's memory with the passphrase and dropped again after
``idle_seconds`` without a request, or on "Lock".
"""

from __future__ import annotations

import hmac
import io
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect

from portal.common import headers as security
from portal.common.assets import load_assets
from portal.common.json_provider import SafeJSONProvider
from portal.common.safe_text import clean_name
from portal.desk import cases as desk_cases
from portal.desk import evidence as desk_files
from portal.desk import keystore
from portal.desk import replies as desk_replies
from portal.desk.inbox import discard_items
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.bundles import BundleError
from portal.protocol.fields import field_labels
from portal.protocol.organization import fingerprint
from portal.protocol.replies import STATUS_LABELS, STATUSES

TOKEN_COOKIE = "desk_token"  # noqa: S105 - a cookie name
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DeskState:
    """The unlocked keys, held in memory only while in use."""

    home: Path
    token: str
    idle_seconds: int
    keys: keystore.DeskKeys | None = None
    last_seen: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current_keys(self) -> keystore.DeskKeys | None:
        with self.lock:
            if self.keys is not None and time.monotonic() - self.last_seen > self.idle_seconds:
                self.keys = None
            if self.keys is not None:
                self.last_seen = time.monotonic()
            return self.keys

    def unlock(self, passphrase: str) -> None:
        keys = keystore.unlock(self.home, passphrase)
        with self.lock:
            self.keys, self.last_seen = keys, time.monotonic()

    def lock_now(self) -> None:
        with self.lock:
            self.keys = None


bp = Blueprint("desk", __name__)


def state() -> DeskState:
    s: DeskState = current_app.extensions["desk"]
    return s


def store() -> DeskStore:
    st: DeskStore = current_app.extensions["desk_store"]
    return st


def keys() -> keystore.DeskKeys:
    k = state().current_keys()
    if k is None:
        abort(redirect(url_for("desk.home")))
    return k


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of any text (a non-ASCII token is simply wrong)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


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


@bp.get("/")
def home() -> ResponseReturnValue:
    if state().current_keys() is None:
        return render_template("desk/unlock.html")
    return redirect(url_for("desk.case_list"))


@bp.post("/unlock")
def unlock() -> ResponseReturnValue:
    try:
        state().unlock(request.form.get("passphrase", ""))
    except keystore.KeystoreError:
        return render_template("desk/unlock.html", error=True), 403
    return redirect(url_for("desk.case_list"), code=303)


@bp.post("/lock")
def lock() -> ResponseReturnValue:
    state().lock_now()
    return redirect(url_for("desk.home"), code=303)


@bp.get("/cases")
def case_list() -> ResponseReturnValue:
    show = request.args.get("show", "all")
    if show not in (*desk_cases.FILTERS, *STATUSES):
        show = "all"
    statuses = desk_cases.current_statuses(store(), keys())
    rows = desk_cases.select_cases(desk_cases.list_cases(store(), statuses), show)
    return render_template("desk/cases.html", rows=rows, show=show)


@bp.get("/cases/<case_id>")
def case_view(case_id: str) -> ResponseReturnValue:
    try:
        case = desk_cases.show_case(store(), keys(), case_id)
    except desk_cases.CaseError:
        abort(404)
    return render_template("desk/case.html", case=case, statuses=STATUSES, labels=field_labels())


INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@bp.get("/cases/<case_id>/files/<upload>")
def case_file(case_id: str, upload: str) -> ResponseReturnValue:
    """A verified file, decrypted as it is sent; a damaged one is never served."""
    try:
        f = desk_cases.case_file(store(), keys(), case_id, upload)
    except desk_cases.CaseError:
        abort(404)
    checked = desk_files.check(store(), f)
    if checked.state != "verified" or checked.sha256 is None:
        return render_template(
            "desk/message.html",
            title=f"File {checked.state}",
            text="This file does not match what the reporter sent, so it is not shown."
            if checked.state == "damaged"
            else "This file has not been imported yet.",
        ), 409
    inline = request.args.get("inline") == "1" and f.type in INLINE_TYPES
    store().custody.append("view", case=case_id, file=f.upload, sha256=checked.sha256)
    response = current_app.response_class(
        stream_with_context(desk_files.plaintext(store(), f)),
        mimetype=f.type if inline else "application/octet-stream",
    )
    name = desk_files.safe_name(f.name, set(), "file")
    response.headers["Content-Disposition"] = (
        f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name)}"
    )
    response.headers["X-SHA256"] = checked.sha256
    return response


@bp.post("/cases/<case_id>/reply")
def case_reply(case_id: str) -> ResponseReturnValue:
    status = request.form.get("status") or None
    if status is not None and status not in STATUSES:
        abort(400)
    try:
        desk_replies.reply(
            store(),
            keys(),
            desk_cases.resolve(store(), case_id),
            status,
            request.form.get("text", ""),
        )
    except desk_cases.CaseError:
        abort(404)
    except desk_replies.ReplyRefused as exc:
        return render_template("desk/message.html", title="Reply not saved", text=str(exc)), 400
    return redirect(url_for("desk.case_view", case_id=case_id, saved=1), code=303)


@bp.route("/import", methods=["GET", "POST"])
def import_inbox() -> ResponseReturnValue:
    k = keys()
    if request.method == "GET":
        return render_template("desk/import.html")
    upload = request.files.get("inbox")
    if upload is None or not upload.filename:
        return render_template("desk/import.html", error="Choose an inbox file first."), 400
    with tempfile.TemporaryDirectory(dir=store().home) as work:
        path = Path(work) / "inbox.tar"
        upload.save(path)
        try:
            result = desk_cases.import_inbox(store(), k, path)
        except BundleError as exc:
            return render_template(
                "desk/import.html", error=f"Bundle refused, nothing imported: {exc}"
            ), 400
    return render_template("desk/import.html", result=result)


@bp.get("/damaged")
def damaged_items() -> ResponseReturnValue:
    keys()
    return render_template("desk/damaged.html", rows=store().damaged(), refused=store().refusals())


@bp.post("/damaged/discard")
def discard() -> ResponseReturnValue:
    keys()
    try:
        discard_items(store(), request.form.getlist("item"))
    except KeyError:
        abort(404)
    return redirect(url_for("desk.damaged_items", discarded=1), code=303)


@bp.route("/invite", methods=["GET", "POST"])
def invite() -> ResponseReturnValue:
    k = keys()
    if request.method == "GET":
        return render_template("desk/invite.html")
    try:
        made = desk_replies.invite(store(), k, request.form.get("questions", ""))
    except desk_replies.ReplyRefused as exc:
        return render_template("desk/invite.html", error=str(exc)), 400
    return render_template("desk/invite.html", made=made, code=codes.format_code(made.code))


@bp.route("/export", methods=["GET", "POST"])
def export() -> ResponseReturnValue:
    k = keys()
    if request.method == "GET":
        return render_template("desk/export.html")
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


def create_desk_app(home: Path, token: str | None = None, idle_seconds: int = 900) -> Flask:
    """The desk app for one home; keys are unlocked per process, in memory."""
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
