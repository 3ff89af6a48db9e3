"""The ``portal`` command: server commands and the ``desk`` group (DESIGN §13)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import qrcode
from flask.cli import FlaskGroup, with_appcontext

from . import codes, create_app
from .bundles import BundleError
from .desk import cases as desk_cases
from .desk import files as desk_files
from .desk import keystore
from .desk import replies as desk_replies
from .desk.custody import CustodyLog, checked_anchors
from .desk.inbox import discard_items
from .desk.lock import DeskBusy, desk_lock
from .desk.outbox import export_outbox
from .desk.store import DeskStore
from .forms import field_labels
from .inbox import export_inbox
from .organization import fingerprint
from .outbox import import_outbox, portal_checkpoints
from .replies import STATUSES
from .retention import purge_acknowledged, purge_idle_mailboxes, sweep_orphans
from .safe_text import for_terminal, json_for_terminal
from .staff import StaffError
from .web.services import services
from .web.sessions import SessionStore
from .web.work import LIFETIME_HOURS, current_hour

PASSPHRASE_ENV = "PORTAL_DESK_PASSPHRASE"  # noqa: S105 - a variable name


class CliError(click.ClickException):
    """A ClickException whose message has its hidden characters escaped."""

    def __init__(self, message: str) -> None:
        super().__init__(for_terminal(message))


def echo(text: str = "", *, err: bool = False, multiline: bool = False) -> None:
    """click.echo of text with its hidden characters escaped (line breaks kept
    only with multiline)."""
    click.echo(for_terminal(text, multiline=multiline), err=err)


@click.group(cls=FlaskGroup, create_app=lambda: create_app())
def main() -> None:
    """The secure reporting portal."""


@main.command("export-inbox")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_inbox_command(file: Path) -> None:
    """Write what the desk has not acknowledged (up to PORTAL_INBOX_ITEMS) into an inbox."""
    svc = services()
    manifest = export_inbox(svc.mailboxes, svc.organization, file, svc.config.inbox_items)
    more = "; more are waiting for the next inbox" if manifest.extra.get("more") else ""
    echo(f"wrote {len(manifest.items)} item(s) to {file}{more}")


@main.command("import-outbox")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@with_appcontext
def import_outbox_command(file: Path) -> None:
    """Verify the desk's signature on an outbox bundle and apply all of it, or none."""
    svc = services()
    try:
        result = import_outbox(svc.mailboxes, svc.organization, file)
    except BundleError as exc:
        raise CliError(f"outbox refused, nothing changed: {exc}") from exc
    echo(
        f"applied outbox {result.seq}: {result.replies} reply item(s), "
        f"{result.invitations} invitation(s), {result.acked} acknowledged envelope(s)"
    )
    for note in result.refused:
        echo(f"not applied: {note}", err=True)
    removed = purge_acknowledged(svc.mailboxes, svc.config.ack_grace_days)
    if removed:
        echo(f"deleted {removed} acknowledged envelope(s) past the grace period")


@main.command("checkpoints")
@with_appcontext
def checkpoints_command() -> None:
    """Print the desk's signed custody heads this portal holds (JSON), for
    `portal desk verify-log --checkpoints FILE` on the desk."""
    _emit(portal_checkpoints(services().mailboxes), True, [])


@main.command("purge")
@with_appcontext
def purge_command() -> None:
    """Run from cron: delete acknowledged ciphertext past the grace period,
    uploads that were never attached to a report, and dead sessions."""
    svc = services()
    removed = purge_acknowledged(svc.mailboxes, svc.config.ack_grace_days)
    expired = svc.uploads.expire(svc.config.upload_expiry_days)
    idle = purge_idle_mailboxes(svc.mailboxes, svc.config.mailbox_retention_days)
    stray = sweep_orphans(svc.mailboxes)
    dead = SessionStore(svc.db).purge()
    svc.spent.purge(current_hour() - LIFETIME_HOURS)
    echo(
        f"deleted {removed} acknowledged item(s) and {expired} abandoned upload(s); "
        f"{idle} idle case(s) past retention; {stray} stray file(s) from interrupted writes; "
        f"{dead} dead session(s)"
    )


@main.group()
def staff() -> None:
    """Relay staff accounts (they carry bundles; they never see plaintext)."""


@staff.command("add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for automation).")
@with_appcontext
def staff_add(name: str, as_json: bool) -> None:
    """Create an account; its passphrase and TOTP secret are printed once."""
    try:
        account = services().staff.add(name)
    except StaffError as exc:
        raise CliError(str(exc)) from exc
    data = {
        "name": account.name,
        "passphrase": account.passphrase,
        "totp_secret": account.totp_secret,
        "otpauth_uri": account.otpauth_uri,
    }
    if as_json:
        _emit(data, True, [])
        return
    qr = qrcode.QRCode(border=1)
    qr.add_data(account.otpauth_uri)
    out = io.StringIO()
    qr.print_ascii(out=out)
    echo(f"Account {account.name} created. This is shown only once.")
    echo()
    echo(f"Passphrase:   {account.passphrase}")
    echo(f"TOTP secret:  {account.totp_secret}")
    echo(f"TOTP URI:     {account.otpauth_uri}")
    echo()
    echo("Scan with an authenticator app:")
    echo(out.getvalue(), multiline=True)


@staff.command("remove")
@click.argument("name")
@with_appcontext
def staff_remove(name: str) -> None:
    """Delete an account; its open sessions end at their next request."""
    try:
        services().staff.remove(name)
    except StaffError as exc:
        raise CliError(str(exc)) from exc
    echo(f"removed {name}")


@staff.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def staff_list(as_json: bool) -> None:
    """List accounts (names and creation days only)."""
    rows = [{"name": n, "created": d.isoformat()} for n, d in services().staff.names()]
    _emit(rows, as_json, [f"{r['name']}  created {r['created']}" for r in rows] or ["no accounts"])


# --- the air-gapped desk ------------------------------------------------------

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PORTAL_DESK_HOME",
    required=True,
    help="The desk's folder (or PORTAL_DESK_HOME).",
)


def _passphrase(confirm: bool = False) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value is not None:
        return value
    entered: str = click.prompt(
        "Desk passphrase", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return entered


def _unlock(home: Path) -> keystore.DeskKeys:
    try:
        return keystore.unlock(home, _passphrase())
    except keystore.KeystoreError as exc:
        raise CliError(str(exc)) from exc


@contextlib.contextmanager
def _desk_home(home: Path) -> Iterator[None]:
    """Hold the desk home for one command; refuse if `desk serve` holds it."""
    try:
        with desk_lock(home):
            yield
    except DeskBusy as exc:
        raise CliError(str(exc)) from exc


def _emit(data: Any, as_json: bool, lines: list[str], *, multiline: bool = False) -> None:
    """Print data as escaped JSON, or each of lines as escaped text."""
    if as_json:
        click.echo(json_for_terminal(data))
        return
    for line in lines:
        echo(line, multiline=multiline)


@main.group(cls=click.Group)  # not Flask's AppGroup: the desk has no portal to load
def desk() -> None:
    """Commands for the air-gapped desk that holds the private keys."""


@desk.command("init")
@home_option
@click.option(
    "--name",
    default="Our organization",
    show_default=True,
    help="The organization's name, as reporters will see it.",
)
@click.option(
    "--cost",
    type=click.Choice(sorted(keystore.COSTS)),
    default="sensitive",
    show_default=True,
    help="Argon2id cost of unlocking the keys with the passphrase.",
)
def desk_init(home: Path, name: str, cost: str) -> None:
    """The key ceremony: make the desk's keys and the public organization.json."""
    try:
        org = keystore.init(home, _passphrase(confirm=True), name, cost=cost)
    except keystore.KeystoreError as exc:
        raise CliError(str(exc)) from exc
    echo(f"Desk keys created in {home}.")
    echo(f"Copy {home / keystore.ORG_FILE} to the portal's keys/organization.json.")
    echo(f"Key fingerprint: {fingerprint(org.encrypt[0].kid)}")


@desk.command("import")
@home_option
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def desk_import(home: Path, bundle: Path) -> None:
    """Check an inbox bundle whole, then keep its new envelopes (still encrypted)."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        try:
            result = desk_cases.import_inbox(store, keys, bundle)
        except BundleError as exc:
            raise CliError(f"bundle refused, nothing imported: {exc}") from exc
        echo(
            f"imported {result.new} new envelope(s) and {result.files} file(s); "
            f"{result.already} already here"
        )
        for arrival in result.arrivals:
            echo(f"  new {arrival.kind:<7} in case {arrival.case}")
        if result.damaged:
            echo(
                f"{result.damaged} item(s) kept aside as damaged, not acknowledged "
                "(the portal will send them again; see `portal desk damaged`)",
                err=True,
            )
        for note in result.notes:
            echo(f"note: {note}", err=True)


@desk.command("cases")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_list(home: Path, as_json: bool) -> None:
    """List the cases on this desk."""
    with _desk_home(home):
        _unlock(home)
        rows = desk_cases.list_cases(DeskStore(home))
        lines = [f"{r['case']}  received {r['received']}  {r['envelopes']} item(s)" for r in rows]
        _emit(rows, as_json, lines or ["no cases yet"])


def _indented(value: str) -> str:
    """A multi-line value, escaped, each line indented by two spaces."""
    return "\n".join(f"  {line}" for line in for_terminal(value, multiline=True).split("\n"))


def _render_case(case: dict[str, Any]) -> str:
    """A case as text; every value in it has its hidden characters escaped."""
    t = for_terminal
    labels = field_labels()
    kind = "witness case" if case["witness"] else "case"
    lines = [f"{kind.capitalize()} {t(case['case'])} · status: {t(case['status'])}"]
    for item in case["items"]:
        lines.append(
            f"\n== {t(item['kind'])} received {t(item['day'])} (sealed by {t(item['sealed_by'])})"
        )
        if item["damaged"]:
            lines.append(f"DAMAGED, not shown: {t(item['damaged'])}")
        for name, value in item["content"].get("fields", {}).items():
            if value:
                # The form's own words for its fields; any other name is the sender's
                # and is quoted, so it cannot pass for the desk's own lines.
                label = labels.get(name) or f"Field {json.dumps(str(name), ensure_ascii=False)}"
                lines.append(f"{t(label)}:\n{_indented(str(value))}")
    for reply in case["replies"]:
        state = "delivered" if reply["delivered"] else "waiting for the next outbox"
        status = f" · status set to {t(reply['status'])}" if reply["status"] else ""
        lines.append(
            f"\n-- our {t(reply['type'])} {reply['seq']} of {t(reply['day'])}{status} ({state})"
        )
        if reply["text"]:
            lines.append(_indented(reply["text"]))
    return "\n".join(lines)


@desk.command("show")
@home_option
@click.argument("case")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_show(home: Path, case: str, as_json: bool) -> None:
    """Decrypt and print one case, in memory (the custody log records the view)."""
    with _desk_home(home):
        keys = _unlock(home)
        try:
            data = desk_cases.show_case(DeskStore(home), keys, case)
        except desk_cases.CaseError as exc:
            raise CliError(str(exc)) from exc
        _emit(data, as_json, [_render_case(data)], multiline=True)


def _resolve(store: DeskStore, case: str) -> str:
    try:
        return desk_cases.resolve(store, case)
    except desk_cases.CaseError as exc:
        raise CliError(str(exc)) from exc


@desk.command("reply")
@home_option
@click.argument("case")
@click.option("--status", type=click.Choice(STATUSES), help="Set the case's status.")
@click.option("--text", default="", help="The reply's text (or --text-file).")
@click.option(
    "--text-file", type=click.File("r", encoding="utf-8"), help="Read the text from a file."
)
def desk_reply(home: Path, case: str, status: str | None, text: str, text_file: Any) -> None:
    """Write a signed reply and/or status for a case; it leaves with the next outbox."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        if text_file is not None:
            text = text_file.read()
        try:
            item = desk_replies.reply(store, keys, _resolve(store, case), status, text)
        except desk_replies.ReplyRefused as exc:
            raise CliError(str(exc)) from exc
        echo(f"reply {item.seq} for case {item.mailbox} is ready for the next outbox")


@desk.command("invite")
@home_option
@click.option(
    "--questions",
    "questions_file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="A text file with the questions for the witness.",
)
def desk_invite(home: Path, questions_file: Any) -> None:
    """Make a witness invitation; its code is printed once, to hand over out of band."""
    with _desk_home(home):
        keys = _unlock(home)
        try:
            invitation = desk_replies.invite(DeskStore(home), keys, questions_file.read())
        except desk_replies.ReplyRefused as exc:
            raise CliError(str(exc)) from exc
        echo(f"Witness case {invitation.mailbox_id} created.")
        echo("Hand this code to the witness. It is shown only now and is not stored:")
        echo(f"    {codes.format_code(invitation.code)}")
        echo("The witness can use it once the next outbox has been imported on the portal.")


@desk.command("export")
@home_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def desk_export(home: Path, file: Path) -> None:
    """Write the signed outbox bundle: replies, invitations and acks of imports."""
    with _desk_home(home):
        keys = _unlock(home)
        manifest = export_outbox(DeskStore(home), keys, file)
        kinds = [i.kind for i in manifest.items]
        echo(
            f"wrote outbox {manifest.extra['seq']} to {file}: {kinds.count('reply')} reply "
            f"item(s), {kinds.count('invitation')} invitation(s), "
            f"{'an ack' if 'ack' in kinds else 'no ack'}"
        )


@desk.command("serve")
@home_option
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1 (0: any free one).")
@click.option("--idle-minutes", default=15, show_default=True, help="Lock the keys after this.")
def desk_serve(home: Path, port: int, idle_minutes: int) -> None:
    """Serve the desk's web interface on 127.0.0.1, behind a per-launch token."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from .desk.web import create_desk_app

    class Quiet(WSGIRequestHandler):
        """No request log: its lines would hold the token and case ids."""

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    with _desk_home(home):
        try:
            app = create_desk_app(home, idle_seconds=idle_minutes * 60)
        except keystore.KeystoreError as exc:
            raise CliError(str(exc)) from exc
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet)
        token = app.extensions["desk"].token
        echo(f"Desk open at http://127.0.0.1:{server.server_port}/?token={token}")
        echo("Open that address in a browser on this machine. Stop with Ctrl+C.")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


@desk.command("verify-log")
@home_option
@click.option(
    "--checkpoints",
    "checkpoints_file",
    type=click.File("r", encoding="utf-8"),
    help="Signed checkpoints printed on the portal by `portal checkpoints`.",
)
def desk_verify_log(home: Path, checkpoints_file: Any) -> None:
    """Check the custody log's hash chain and that it still holds every head the
    desk signed at an export (kept by the portal); name the first broken entry."""
    org = keystore.public_organization(home)
    try:
        anchors = checked_anchors(DeskStore(home).checkpoints(), org.verify_key)
        if checkpoints_file is not None:
            anchors += checked_anchors(json.load(checkpoints_file), org.verify_key)
    except ValueError as exc:
        raise CliError(f"a checkpoint is not usable: {exc}") from exc
    result = CustodyLog(home / "custody.log").verify((a.n, a.hash) for a in anchors)
    if not result.ok:
        raise CliError(
            f"custody log broken at entry {result.first_broken}: {result.reason} "
            f"({result.entries} entries before it check)"
        )
    newest = max(anchors, key=lambda a: a.n, default=None)
    made = DeskStore(home).exports_made()
    if made and (newest is None or max(a.outbox for a in anchors) < made):
        # The desk keeps the head it signs at every export: one missing means the
        # checkpoints were cut along with the log.
        raise CliError(
            f"this desk has made {made} outbox(es) but holds no signed checkpoint of "
            f"outbox {made}, so the log cannot be checked against it: import a fresh "
            "inbox, or pass --checkpoints with what `portal checkpoints` prints on the portal"
        )
    echo(f"custody log intact: {result.entries} entries")
    if newest is None:
        echo("no signed checkpoint yet: the first export anchors the log")
    else:
        echo(f"it holds the head the desk signed for outbox {newest.outbox} (entry {newest.n})")


@desk.command("damaged")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_damaged(home: Path, as_json: bool) -> None:
    """List the items kept aside because they failed their checks."""
    with _desk_home(home):
        rows = [
            {
                "id": d.id,
                "kind": d.kind,
                "claimed_case": d.claimed_case,
                "reason": d.reason,
                "first_seen": d.first_seen.isoformat(),
                "last_seen": d.last_seen.isoformat(),
                "discarded": d.discarded,
            }
            for d in DeskStore(home).damaged()
        ]
        lines = [
            f"{r['id']}  {r['kind']}  case {r['claimed_case'] or '?'}  {r['reason']}"
            + ("  (discarded)" if r["discarded"] else "")
            for r in rows
        ]
        refused = DeskStore(home).refusals()
        lines += [
            f"refused by the portal: {r.kind} {r.id} of outbox {r.outbox}: {r.reason}"
            for r in refused
        ]
        _emit(
            {"kept_aside": rows, "refused": [r.__dict__ for r in refused]} if as_json else rows,
            as_json,
            lines or ["nothing kept aside, nothing refused"],
        )


@desk.command("discard")
@home_option
@click.argument("items", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every item kept aside.")
def desk_discard(home: Path, items: tuple[str, ...], everything: bool) -> None:
    """Give up on damaged items: the next outbox tells the portal to delete them
    (after its grace period). Use it for junk that will never verify."""
    with _desk_home(home):
        _unlock(home)
        store = DeskStore(home)
        ids = [d.id for d in store.damaged()] if everything else list(items)
        try:
            done = discard_items(store, ids)
        except KeyError as exc:
            raise CliError(f"nothing kept aside is called {exc.args[0]}") from exc
        echo(f"{done} item(s) will be discarded by the next outbox")


@desk.command("save")
@home_option
@click.argument("case")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the original files and SHA256SUMS into.",
)
def desk_save(home: Path, case: str, out: Path) -> None:
    """Write a case's evidence files, checked against their sealed hashes."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        try:
            shown = desk_cases.show_case(store, keys, case)
        except desk_cases.CaseError as exc:
            raise CliError(str(exc)) from exc
        case_files = [
            f
            for item in shown["items"]
            for f in desk_files.files_of(item["content"], shown["case"])
        ]
        result = desk_files.save_files(store, shown["case"], case_files, out)
        for name, sha in result.saved:
            echo(f"verified  {sha}  {name}")
        for name in result.damaged:
            echo(f"DAMAGED   {name}: not written", err=True)
        for name in result.missing:
            echo(f"missing   {name}: not imported yet", err=True)
        if result.damaged:
            raise CliError(f"{len(result.damaged)} file(s) are damaged")
