"""JSON endpoints for the browser code. They accept only ciphertext."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, jsonify, request, session
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Connection

from portal.common.db import on_rollback
from portal.common.errors import PortalError
from portal.protocol import codes
from portal.protocol.encoding import EncodingError, b64decode, b64encode
from portal.protocol.envelopes import check, follow_up_kind
from portal.protocol.mailbox import MailboxKey, NewMailbox
from portal.protocol.reports import check_copy
from portal.server.mailboxes import Attach, MailboxError, Within
from portal.server.uploads import UploadError
from portal.server.web import case_session, sessions, uploads_session, work
from portal.server.web.errors import STATUS, public_message
from portal.server.web.reporter import FormSpent, spend_form_within
from portal.server.web.services import services

bp = Blueprint("api", __name__, url_prefix="/api")
UPLOADS_MARK_HEADER = "X-Uploads-Mark"


class ApiError(PortalError):
    """A request this API refuses for its own shape (not its storage's)."""


@bp.errorhandler(PortalError)
def _refused(exc: PortalError) -> ResponseReturnValue:
    """Every refusal, from here or from storage: the reason, the reporter's words
    for it (translated) and its status from the one table; never the detail."""
    answer = jsonify(error=exc.reason, message=public_message(exc.reason), **exc.extra)
    return answer, STATUS.get(exc.reason, 400)


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError("json", "The request must be a JSON object.")
    return body


@bp.get("/ping")
def ping() -> ResponseReturnValue:
    """A trivial answer, for health checks and as the benchmarks' baseline."""
    return jsonify(ok=True)


@bp.get("/form-token")
def form_token() -> ResponseReturnValue:
    """A token for this session's next form (a new session if it has none), for a
    page whose own token no longer holds: the session ended while the reporter
    wrote, or a report sent from another tab spent it. The page takes it and sends
    again, so nothing typed is lost to a reload; ``new_session`` tells it the old
    session ended, so the files it uploaded there are gone and go out again. A
    page that uploaded sends the mark its uploads' starts answered (a header, never
    in the URL); ``other_uploads`` says the session's uploads are not those, so it
    also sees a session another tab started meanwhile. The answer says nothing of
    a session's uploads to a request that does not hold their mark. Only
    this portal's own pages can read it, as they read the token in a page: the
    answer carries no CORS header, and Cross-Origin-Resource-Policy keeps it out
    of other sites' pages."""
    return jsonify(
        token=generate_csrf(),
        new_session=session.new,
        other_uploads=uploads_session.other_than(request.headers.get(UPLOADS_MARK_HEADER)),
    )


@bp.post("/pow")
def new_challenge() -> ResponseReturnValue:
    """A proof-of-work challenge for this session's next submission or upload."""
    return jsonify(work.issue())


def _spend_work(body: dict[str, Any]) -> None:
    """Every browser submission pays for itself first (see web/work.py)."""
    try:
        work.spend(body.pop("pow", None))
    except work.WorkMissing as exc:
        raise _no_work() from exc


def _checked_work(body: dict[str, Any]) -> work.Paid:
    """The request's proof of work, checked now and spent with what it stores."""
    try:
        return work.check(body.pop("pow", None))
    except work.WorkMissing as exc:
        raise _no_work() from exc


@contextmanager
def _paying(paid: work.Paid) -> Iterator[None]:
    """Everything a paid request does after its proof was checked. A proof spent
    before is refused first; a request refused for any reason still spends its
    proof (in a commit of its own), so one proof cannot buy a stream of refused
    write transactions; a stored one spent it with what it stored."""
    svc = services()
    if svc.spent.is_spent(paid.digest):
        raise _no_work()
    try:
        yield
    except work.WorkMissing as exc:  # spent meanwhile, by a request racing this one
        raise _no_work() from exc
    except PortalError:
        _spend_alone(paid)
        raise


def _spend_alone(paid: work.Paid) -> None:
    """Spend a proof in a commit of its own (its request stored nothing)."""
    with contextlib.suppress(work.WorkMissing), services().db.transaction() as s:
        work.spend_within(s, paid)


def _no_work() -> ApiError:
    return ApiError("work", "No valid proof of work for this session.")


def _stored_with(paid: work.Paid, report: str | None = None) -> Within:
    """What a report or message writes besides itself, in its transaction (one
    commit): the proof of work spent, the session's own write, and, for a
    ``report`` (its form is done; a case page sends many messages), the form
    spent and the case named in the session, for a send of it again."""

    def spend_work(c: Connection) -> None:
        work.spend_within(c, paid)

    def spend_form(c: Connection) -> None:
        with contextlib.suppress(FormSpent):  # the proof of work is what refuses a replay
            spend_form_within(c)

    def name_case(c: Connection) -> None:
        before = session.get(REPORTS_SENT)
        sent = before if isinstance(before, list) else []
        session[REPORTS_SENT] = [*sent, report][-REPORTS_KEPT:]
        on_rollback(c, lambda: session.__setitem__(REPORTS_SENT, sent))

    return (spend_work, *((spend_form, name_case) if report else ()), sessions.write_within)


# The cases of the reports this session stored (the last few): only from the
# session that stored a case may a report sent again be told the case is there,
# so a copy of the request replayed elsewhere learns nothing of the case since.
REPORTS_SENT = "reports-sent"
REPORTS_KEPT = 4


_REPORT_KEYS = {"envelope", "mailbox", "attachments", "copy"}


@bp.post("/reports")
def create_report() -> ResponseReturnValue:
    """A browser-sealed report and the new mailbox's key, as ciphertext."""
    body = json_body()
    paid = _checked_work(body)
    with _paying(paid):
        if not {"envelope", "mailbox"} <= set(body) <= _REPORT_KEYS:
            raise ApiError("shape", "The request must hold an envelope and a mailbox key.")
        svc = services()
        envelope = check(
            body["envelope"],
            svc.organization,
            kinds=("report",),
            sealed_by="browser",
            max_bytes=svc.config.max_envelope_bytes,
        )
        new = NewMailbox.from_json(body["mailbox"])
        sent_here = new.id in (session.get(REPORTS_SENT) or ())
        try:
            svc.mailboxes.create(
                new,
                envelope,
                attach=_claimer(body.get("attachments", [])),
                copy=_copy(body),
                also=_stored_with(paid, report=new.id),
            )
        except (MailboxError, UploadError):
            # Its files or its case already taken: by this very report, sent again
            # because the answer to its first send was lost on the way?
            same = svc.mailboxes.arrived_before(new, envelope) if sent_here else None
            if same is None:
                raise
            _spend_alone(paid)  # one proof, one answer
            return jsonify(ok=True, stored_before=True, changed=not same), 200
    return jsonify(ok=True), 201


def _copy(body: dict[str, Any]) -> bytes | None:
    """The reporter's own copy, when they asked for one (ciphertext the server
    cannot open, checked for shape and size like an envelope)."""
    if body.get("copy") is None:
        return None
    try:
        return check_copy(body["copy"], services().config.max_envelope_bytes)
    except (ValueError, EncodingError) as exc:
        raise ApiError("copy", "The copy is malformed.") from exc


def _claimer(ids: object) -> Attach | None:
    """Attach this session's finished uploads inside the storing transaction
    (checked and hashed before it: see ``Uploads.claimer``)."""
    if not isinstance(ids, list) or len(ids) > services().config.max_files:
        raise ApiError("attachments", "The list of files is malformed.")
    if not ids:
        return None
    return services().uploads.claimer(uploads_session.owner(), ids)


@bp.post("/uploads")
def start_upload() -> ResponseReturnValue:
    """Reserve an upload: its ciphertext size and part size; answer with its id."""
    body = json_body()
    _spend_work(body)
    owner = uploads_session.owner()
    row = services().uploads.start(owner, body.get("size"), body.get("part_size"))
    mark = uploads_session.mark(owner)
    return jsonify(upload=row.id, parts=row.parts, received=0, uploader=mark), 201


@bp.get("/uploads/<upload_id>")
def upload_status(upload_id: str) -> ResponseReturnValue:
    """How many parts have arrived: where to resume."""
    row = services().uploads.status(upload_id, uploads_session.existing())
    return jsonify(upload=row.id, parts=row.parts, received=row.received)


@bp.put("/uploads/<upload_id>/parts/<int:number>")
def upload_part(upload_id: str, number: int) -> ResponseReturnValue:
    """One part of ciphertext, streamed to disk as it arrives."""
    received = services().uploads.write_part(
        upload_id, uploads_session.existing(), number, request.stream, request.content_length
    )
    return jsonify(upload=upload_id, received=received)


@bp.delete("/uploads/<upload_id>")
def cancel_upload(upload_id: str) -> ResponseReturnValue:
    services().uploads.cancel(upload_id, uploads_session.existing())
    return jsonify(ok=True)


def _open_case() -> case_session.OpenCase:
    current = case_session.current()
    if current is None:
        raise ApiError("expired")
    return current


@bp.post("/case/open")
def open_case() -> ResponseReturnValue:
    """Present SHA-256's preimage (``lookup``); get back only ciphertext."""
    body = json_body()
    try:
        lookup = b64decode(body.get("lookup"), length=32)
    except EncodingError as exc:
        raise ApiError("lookup", "The request must hold a 32-byte lookup.") from exc
    record = services().mailboxes.find(codes.mailbox_index(lookup))
    if record is None:
        raise ApiError("no_case")
    case_session.start(case_session.OpenCase(record.mailbox_id, record.kind, record.generation))
    return jsonify(
        mailbox=record.mailbox_id,
        kind=record.kind,
        wrapped_key=b64encode(record.wrapped_key),
        created=record.created_on.isoformat(),
        replies=[
            {"seq": r.seq, "day": r.day.isoformat(), "sealed": b64encode(r.sealed)}
            for r in record.replies
        ],
        sent=[
            {
                "kind": e.kind,
                "day": e.day.isoformat(),
                "size": e.size,
                **({"copy": b64encode(e.copy)} if e.copy else {}),
            }
            for e in record.sent
        ],
    )


@bp.post("/case/rotate")
def rotate_code() -> ResponseReturnValue:
    """The next code's index and wrapped key, pending until confirmed."""
    body = json_body()
    current = _open_case()
    key = MailboxKey.from_json(body)
    rotation = services().mailboxes.begin_rotation(current.mailbox_id, key, current.generation)
    case_session.rotation_begun(current, rotation)
    return jsonify(rotation=rotation)


@bp.post("/case/confirm")
def confirm_code() -> ResponseReturnValue:
    body = json_body()
    current = _open_case()
    rotation = body.get("rotation")
    if not isinstance(rotation, str):
        raise ApiError("rotation", "The request must name the rotation to confirm.")
    try:
        changed = services().mailboxes.confirm_rotation(
            current.mailbox_id, rotation, current.generation
        )
    except MailboxError as exc:
        if exc.reason == "rotated":  # the code that opened this case is dead: so is the case
            case_session.end_here()
        raise
    case_session.confirmed(current, rotation)
    return jsonify(ok=True, already=not changed)


@bp.post("/case/message")
def send_message() -> ResponseReturnValue:
    """A browser-sealed follow-up: a message, or a witness's answer."""
    body = json_body()  # read first: the case is checked once all of it has arrived
    current = _open_case()
    svc = services()
    kind = follow_up_kind(current.kind)
    paid = _checked_work(body)
    try:
        with _paying(paid):
            envelope = check(
                body.get("envelope"),
                svc.organization,
                kinds=(kind,),
                sealed_by="browser",
                max_bytes=svc.config.max_envelope_bytes,
            )
            svc.mailboxes.add_envelope(
                current.mailbox_id,
                envelope,
                attach=_claimer(body.get("attachments", [])),
                copy=_copy(body),
                also=_stored_with(paid),
            )
    except MailboxError as exc:
        if exc.reason == "case_full":
            raise
        raise ApiError("expired", str(exc)) from exc  # the case is gone under this session
    return jsonify(ok=True), 201


@bp.post("/case/alive")
def keep_alive() -> ResponseReturnValue:
    """The reporter is still here (typing a long message): the case stays open."""
    _open_case()
    return jsonify(ok=True)


@bp.post("/case/leave")
def leave_case() -> ResponseReturnValue:
    case_session.leave()
    return jsonify(ok=True)
