"""The ``portal desk`` group: the air-gapped desk's commands. It imports no
server code (a test over the import graph enforces it)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from portal.cli.output import CliError, echo, emit
from portal.common.safe_text import for_terminal
from portal.desk import cases as desk_cases
from portal.desk import evidence as desk_files
from portal.desk import keystore
from portal.desk import replies as desk_replies
from portal.desk.custody import CustodyLog, checked_anchors
from portal.desk.inbox import discard_items
from portal.desk.lock import DeskBusy, desk_lock
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.bundles import BundleError
from portal.protocol.fields import field_labels
from portal.protocol.organization import fingerprint
from portal.protocol.replies import STATUSES

PASSPHRASE_ENV = "PORTAL_DESK_PASSPHRASE"  # noqa: S105 - a variable name

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


@click.group()  # not Flask's AppGroup: the desk has no portal to load
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
        keys = _unlock(home)
        store = DeskStore(home)
        rows = desk_cases.list_cases(store, desk_cases.current_statuses(store, keys))
        lines = [
            f"{r.case}  received {r.received}  {r.envelopes} item(s)  {r.status}"
            + ("  witness" if r.witness else "")
            for r in rows
        ]
        emit([desk_cases.as_json(r) for r in rows], as_json, lines or ["no cases yet"])


def _indented(value: str) -> str:
    """A multi-line value, escaped, each line indented by two spaces."""
    return "\n".join(f"  {line}" for line in for_terminal(value, multiline=True).split("\n"))


def _render_case(case: desk_cases.CaseView) -> str:
    """A case as text; every value in it has its hidden characters escaped."""
    t = for_terminal
    labels = field_labels()
    kind = "witness case" if case.witness else "case"
    lines = [f"{kind.capitalize()} {t(case.case)} · status: {t(case.status)}"]
    for item in case.items:
        lines.append(f"\n== {t(item.kind)} received {t(item.day)} (sealed by {t(item.sealed_by)})")
        if item.damaged:
            lines.append(f"DAMAGED, not shown: {t(item.damaged)}")
        for name, value in item.content.get("fields", {}).items():
            if value:
                # The form's own words for its fields; any other name is the sender's
                # and is quoted, so it cannot pass for the desk's own lines.
                label = labels.get(name) or f"Field {json.dumps(str(name), ensure_ascii=False)}"
                lines.append(f"{t(label)}:\n{_indented(str(value))}")
    for reply in case.replies:
        state = "delivered" if reply.delivered else "waiting for the next outbox"
        status = f" · status set to {t(reply.status)}" if reply.status else ""
        lines.append(f"\n-- our {t(reply.type)} {reply.seq} of {t(reply.day)}{status} ({state})")
        if reply.text:
            lines.append(_indented(reply.text))
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
        emit(desk_cases.as_json(data), as_json, [_render_case(data)], multiline=True)


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

    from portal.desk.web import create_desk_app

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
        emit(
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
            f for item in shown.items for f in desk_files.files_of(item.content, shown.case)
        ]
        result = desk_files.save_files(store, shown.case, case_files, out)
        for name, sha in result.saved:
            echo(f"verified  {sha}  {name}")
        for name in result.damaged:
            echo(f"DAMAGED   {name}: not written", err=True)
        for name in result.missing:
            echo(f"missing   {name}: not imported yet", err=True)
        if result.damaged:
            raise CliError(f"{len(result.damaged)} file(s) are damaged")
