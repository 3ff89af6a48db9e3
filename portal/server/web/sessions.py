"""Server-side sessions: the cookie holds a random token, the database its hash.

A session cookie holds 32 random bytes and nothing else. The ``sessions``
table keys each session by a one-way hash of that token and keeps its data
sealed (SecretBox) under a second key derived from the token, with the time
after which it is dead. So nothing in the data dir or the database lets
anyone mint a session or read one: both need the token, which only the
browser holds. Deleting the row ends the session at once, wherever its
cookie is; :func:`regenerate` moves a session to a new token and deletes the
old one (at log in, opening or leaving a case, confirming a code, and when a
part of it goes idle).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import nacl.exceptions
from flask import Flask, Request, Response, current_app, request, session
from flask.sessions import SessionInterface, SessionMixin
from nacl.secret import SecretBox
from sqlalchemy import Connection, Table, bindparam, delete, insert, select
from sqlalchemy import update as sa_update
from werkzeug.datastructures import CallbackDict
from werkzeug.wrappers import Response as BaseResponse

from portal.common.db import Database, Prepared, Tx, connection_of, on_commit
from portal.protocol.encoding import EncodingError, b64decode, b64encode
from portal.server.models import SessionRow
from portal.server.spent import SpentTokens
from portal.server.web.housekeeping import Purge

T = TypeVar("T")
TOKEN_BYTES = 32
# How often an unchanged session's deadline is pushed back (a write saved on
# most page views; the deadline is never more than this much too early).
REFRESH_SECONDS = 300
# Every request reads this table, and many write it: its statements are compiled
# once and run on the driver's cursor (db.Prepared).
_ROWS: Table = SessionRow.__table__  # type: ignore[assignment]
_LOAD = Prepared(select(_ROWS.c.sealed, _ROWS.c.expires).where(_ROWS.c.id == bindparam("id")))
_INSERT = Prepared(insert(_ROWS))
_UPDATE_LIVE = Prepared(
    sa_update(_ROWS)
    .where(_ROWS.c.id == bindparam("key"), _ROWS.c.expires > bindparam("now"))
    .values(sealed=bindparam("new_sealed"), expires=bindparam("deadline"))
)
_EXTEND_LIVE = Prepared(
    sa_update(_ROWS)
    .where(_ROWS.c.id == bindparam("key"), _ROWS.c.expires > bindparam("now"))
    .values(expires=bindparam("deadline"))
)
_DELETE = Prepared(delete(_ROWS).where(_ROWS.c.id == bindparam("id")))
_DELETE_LIVE = Prepared(
    delete(_ROWS).where(_ROWS.c.id == bindparam("id"), _ROWS.c.expires > bindparam("now"))
)


def session_id(token: bytes) -> bytes:
    """The only form of the token the database holds."""
    return hashlib.blake2b(token, person=b"portal-sess-id", digest_size=32).digest()


def _box(token: bytes) -> SecretBox:
    return SecretBox(hashlib.blake2b(token, person=b"portal-sess-key", digest_size=32).digest())


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """Session data with its token; ``modified`` is set by any change."""

    def __init__(
        self, data: dict[str, Any] | None = None, token: bytes | None = None, deadline: int = 0
    ) -> None:
        def on_update(_self: CallbackDict[str, Any]) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(data or {}, on_update)
        self.token = token
        self.deadline = deadline
        self.modified = False
        self.accessed = False
        self.replace_token = False
        self.discarded = False  # see discard_changes
        self.cookie: str | None = None  # "set" or "clear", once its write is committed

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.token is None

    # What a committed write leaves behind (see ServerSessionInterface.write).
    def _moved(self, token: bytes, deadline: int) -> None:
        self.token, self.deadline, self.cookie = token, deadline, "set"
        self.replace_token = self.modified = False

    def _kept(self, deadline: int | None) -> None:
        self.deadline = deadline or self.deadline
        self.modified = False

    def _ended(self) -> None:
        self.token, self.cookie = None, "clear"
        self.modified = False


class SessionStore:
    """Sessions in the portal's database, sealed under keys only their tokens give."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self.spent = SpentTokens(db)

    def _write(self, within: Tx | None, write: Callable[[Connection], T]) -> T:
        """``write`` in the caller's transaction, or in one of its own (joined with
        the other requests writing at that moment: one commit for them all)."""
        if within is not None:
            return write(connection_of(within))
        return self.db.joined(write)

    def load(self, token: bytes) -> tuple[dict[str, Any], int] | None:
        """The session's data and deadline, or None if it is unknown or dead."""
        with self.db.reading_rows() as c:
            row = _LOAD.first(c, {"id": session_id(token)})
        if row is None or row[1] <= self.clock():
            return None
        sealed, expires = row
        try:
            data = json.loads(_box(token).decrypt(bytes(sealed)))
        except (nacl.exceptions.CryptoError, ValueError):
            return None
        return (data, expires) if isinstance(data, dict) else None

    def _sealed(self, token: bytes, data: dict[str, Any]) -> bytes:
        return bytes(_box(token).encrypt(json.dumps(data, separators=(",", ":")).encode()))

    def create(
        self,
        token: bytes,
        data: dict[str, Any],
        lifetime: int,
        replaces: bytes | None = None,
        within: Tx | None = None,
    ) -> int | None:
        """Store a new session; if it ``replaces`` one, only while that one is still
        alive (deleted in the same transaction). None: the old one was revoked."""
        deadline = int(self.clock()) + lifetime
        row = {"id": session_id(token), "sealed": self._sealed(token, data), "expires": deadline}
        old = None if replaces is None else session_id(replaces)

        def write(c: Connection) -> int | None:
            replaced = {"id": old, "now": self.clock()}
            if old is not None and _DELETE_LIVE.count(c, replaced) != 1:
                return None  # the session it replaces was revoked meanwhile
            _INSERT.count(c, row)
            return deadline

        return self._write(within, write)

    def update(
        self,
        token: bytes,
        data: dict[str, Any],
        lifetime: int,
        within: Tx | None = None,
    ) -> int | None:
        """Rewrite a live session; never bring back one revoked meanwhile (None)."""
        deadline = int(self.clock()) + lifetime
        values = {"new_sealed": self._sealed(token, data), "deadline": deadline}
        key = session_id(token)

        def write(c: Connection) -> int | None:
            changed = _UPDATE_LIVE.count(c, {"key": key, "now": self.clock(), **values})
            return deadline if changed == 1 else None

        return self._write(within, write)

    def extend(self, token: bytes, lifetime: int, within: Tx | None = None) -> int | None:
        """Push back a live session's deadline, leaving its data as it is stored
        now: another request may have written it since this one read it."""
        deadline = int(self.clock()) + lifetime
        key = session_id(token)

        def write(c: Connection) -> int | None:
            changed = _EXTEND_LIVE.count(c, {"key": key, "now": self.clock(), "deadline": deadline})
            return deadline if changed == 1 else None

        return self._write(within, write)

    def alive(self, token: bytes) -> bool:
        """Whether this session still exists (Leave or log out may have ended it since
        this request began)."""
        with self.db.reading_rows() as c:
            row = _LOAD.first(c, {"id": session_id(token)})
        return row is not None and row[1] > self.clock()

    def delete(self, token: bytes, within: Tx | None = None) -> None:
        key = session_id(token)
        self._write(within, lambda c: _DELETE.count(c, {"id": key}))

    def purge(self) -> int:
        """Delete every dead session; return how many."""
        with self.db.transaction() as s:
            dead = list(s.scalars(select(SessionRow.id).where(SessionRow.expires <= self.clock())))
            if dead:
                s.execute(delete(SessionRow).where(SessionRow.id.in_(dead)))
        return len(dead)


class ServerSessionInterface(SessionInterface):
    """Flask's session, kept server-side (see the module's docstring)."""

    def __init__(self, store: SessionStore, cookie_name: str, lifetime: int, secure: bool) -> None:
        self.store = store
        self.cookie_name = cookie_name
        self.lifetime = lifetime
        self.secure = secure
        self._purge = Purge("dead sessions", lambda: self.store.purge())

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        raw = request.cookies.get(self.cookie_name, "")
        try:
            token = b64decode(raw, length=TOKEN_BYTES)
        except EncodingError:
            return ServerSession()
        found = self.store.load(token)
        if found is None:
            return ServerSession()  # never adopt a token the server did not issue
        data, deadline = found
        line = data.get(LINE)
        if isinstance(line, str) and self.store.spent.is_spent(_line_digest(line)):
            # Left or logged out while another request moved it to a new token.
            self.store.delete(token)
            return ServerSession()
        return ServerSession(data, token, deadline)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        self.write(session)
        if session.cookie == "clear":
            response.delete_cookie(self.cookie_name, path="/")
        elif session.cookie == "set":
            response.set_cookie(
                self.cookie_name,
                b64encode(session.token or b""),
                httponly=True,
                samesite="Strict",
                secure=self.secure,
                path="/",
            )
            response.vary.add("Cookie")
            self._purge.maybe()

    def write(self, session: ServerSession, within: Tx | None = None) -> None:
        """Store what this request changed of its session: delete an emptied one,
        rewrite a changed (or stale) one, or store it under a new token. In
        ``within``, the caller's transaction, the session takes the outcome only
        once that transaction commits; otherwise in a transaction of its own."""

        def then(outcome: Callable[[], None]) -> None:
            if within is None:
                outcome()
            else:
                on_commit(within, outcome)

        if session.discarded:
            return
        old = session.token
        if old is not None and not session:
            self.store.delete(old, within)
            then(session._ended)
            return
        if not session:
            return
        if old is not None and not session.replace_token:
            stale = session.deadline - self.store.clock() < self.lifetime - REFRESH_SECONDS
            # None: revoked while this request ran (Leave, log out): it stays dead.
            if session.modified:
                deadline = self.store.update(old, dict(session), self.lifetime, within)
                then(lambda: session._kept(deadline))
            elif stale:  # unchanged here: only its deadline, never what it read back
                deadline = self.store.extend(old, self.lifetime, within)
                then(lambda: session._kept(deadline))
            return
        token = secrets.token_bytes(TOKEN_BYTES)
        deadline = self.store.create(token, dict(session), self.lifetime, old, within)
        if deadline is not None:  # None: the session it replaces was revoked meanwhile
            then(lambda: session._moved(token, deadline))


def _current() -> ServerSession | None:
    """This request's session, as this module keeps it (None under another interface)."""
    current = session._get_current_object()  # type: ignore[attr-defined]
    return current if isinstance(current, ServerSession) else None


def _interface() -> ServerSessionInterface:
    """The app's session interface, which this module installs."""
    interface = current_app.session_interface
    assert isinstance(interface, ServerSessionInterface)
    return interface


def write_within(t: Tx) -> None:
    """Make this request's session write now, inside the caller's transaction, so
    the request commits once (a report and its spent form: one fsync). Call it
    last in that transaction; the cookie still goes out with the response."""
    current = _current()
    interface = current_app.session_interface
    if current is not None and isinstance(interface, ServerSessionInterface):
        interface.write(current, t)


def discard_changes() -> None:
    """Store nothing of what this request changed in its session: it lost a race
    to another request of the same session (a form sent twice at once), whose
    write must stand. Rewriting the whole session after it would take back what
    that request stored there (the code its reporter is about to be shown)."""
    current = _current()
    if current is not None:
        current.discarded = True


def as_stored() -> dict[str, Any] | None:
    """This request's session as it is stored now (another request of the same
    session may have written it since this one read it); None if it ended or
    was never stored."""
    current = _current()
    if current is None or current.token is None:
        return None
    found = _interface().store.load(current.token)
    return None if found is None else found[0]


def start_over() -> None:
    """This request's session ended while it ran (another request of it left): what
    it writes now goes into a new session, under a new cookie."""
    current = _current()
    if current is not None:
        current.clear()
        current.token = None
        current.discarded = False


def adopt(data: dict[str, Any]) -> None:
    """Read and show this session as another request stored it (``as_stored``),
    and write none of it back (see ``discard_changes``)."""
    current = _current()
    if current is not None:
        current.clear()
        current.update(data)
        current.discarded = True


LINE = "line"  # the lineage of a privileged session, kept across its new tokens


def _line_digest(line: str) -> bytes:
    return hashlib.sha256(b"session-line:" + line.encode()).digest()


def new_line() -> None:
    """A privilege begins (a case opened, a log in): a lineage of its own."""
    session[LINE] = secrets.token_hex(16)


def end_line() -> None:
    """Leave, log out, idling out: this lineage ends for good, whatever token a
    request running at the same moment moves it to, and a new one begins."""
    line = session.get(LINE)
    if isinstance(line, str):
        interface = _interface()
        hours = interface.lifetime // 3600 + 2  # kept for as long as a session can live
        interface.store.spent.spend(_line_digest(line), int(time.time() // 3600) + hours)
    new_line()


def alive() -> bool:
    """Whether this request's session still stands (a fresh one always does)."""
    current = _current()
    if current is None or current.token is None:
        return True
    return _interface().store.alive(current.token)


def regenerate() -> None:
    """Move this session to a new token at the end of the request; the old one dies."""
    current = _current()
    if current is not None:
        current.replace_token = True
        current.modified = True


def cookie_sent() -> bool:
    """Whether this request came with a session cookie (live or not)."""
    return request.cookies.get(_interface().cookie_name) is not None


def forget_cookie(response: BaseResponse) -> None:
    """Tell the browser to drop its session cookie, whatever this request stored."""
    response.delete_cookie(_interface().cookie_name, path="/")


def install(app: Flask, store: SessionStore, cookie_name: str, lifetime: int, secure: bool) -> None:
    app.session_interface = ServerSessionInterface(store, cookie_name, lifetime, secure)
