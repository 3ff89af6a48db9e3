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
from portal.common.languages import LANGUAGES
from portal.common.questionnaire import Questionnaire
from portal.common.safe_text import for_terminal
from portal.desk import (
    casefile,
    casework,
    keystore,
    layout,
    referrals,
    settings,
    staff,
    stats,
    tables,
    transparency,
)
from portal.desk import cases as desk_cases
from portal.desk import evidence as desk_files
from portal.desk import replies as desk_replies
from portal.desk.custody import CustodyLog, checked_anchors
from portal.desk.inbox import discard_items
from portal.desk.lock import DeskBusy
from portal.desk.names import case_name
from portal.desk.outbox import export_outbox
from portal.desk.store import DeskStore
from portal.protocol import codes
from portal.protocol.bundles import BundleError
from portal.protocol.organization import OrganizationError, fingerprint, parse
from portal.protocol.replies import STATUSES

PASSPHRASE_ENV = "PORTAL_DESK_PASSPHRASE"  # noqa: S105 - a variable name
PERSON_ENV = "PORTAL_DESK_PERSON"
CODE_ENV = "PORTAL_DESK_CODE"

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
    """Unlock as the person named by PORTAL_DESK_PERSON (or asked for when the desk
    has several), with their passphrase and, if they have one, a one-time code."""
    try:
        people = keystore.people(home)
        person = os.environ.get(PERSON_ENV)
        if person is None and len(people) > 1:
            person = click.prompt("Your name on the desk", err=True)
        chosen = [p for p in people if person is None or p.name.casefold() == person.casefold()]
        code = os.environ.get(CODE_ENV)
        if code is None and any(p.second_factor for p in chosen):
            code = click.prompt("One-time code from your authenticator", err=True)
        return keystore.unlock(home, _passphrase(), person, code, DeskStore(home).spend_code)
    except keystore.KeystoreError as exc:
        raise CliError(str(exc)) from exc


@contextlib.contextmanager
def _desk_home(home: Path) -> Iterator[None]:
    """Say plainly when another desk process kept the home busy for too long
    (each change holds the home only while it runs; see portal/desk/lock.py)."""
    try:
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
@click.option(
    "--person",
    default=keystore.FIRST_PERSON,
    show_default=True,
    help="Your name: the first person who can unlock the desk.",
)
def desk_init(home: Path, name: str, cost: str, person: str) -> None:
    """The key ceremony: make the desk's keys and the public organization.json."""
    try:
        chosen = keystore.strong_enough(_passphrase(confirm=True))
        org = keystore.init(home, chosen, name, cost=cost, person=person)
    except keystore.KeystoreError as exc:
        raise CliError(str(exc)) from exc
    echo(f"Desk keys created in {home}.")
    echo(f"Copy {home / keystore.ORG_FILE} to the portal's keys/organization.json.")
    echo(f"Key fingerprint: {fingerprint(org.encrypt[0].kid)}")


@desk.command("import")
@home_option
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def desk_import(home: Path, bundle: Path) -> None:
    """Check an inbox bundle whole, then keep its new envelopes (still encrypted);
    or check a partner's referral (signature, partner list, our key) and keep it."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        if referrals.is_referral(bundle):
            _import_referral(store, keys, bundle)
            return
        try:
            result = desk_cases.import_inbox(store, keys, bundle)
        except BundleError as exc:
            raise CliError(f"bundle refused, nothing imported: {exc}") from exc
        echo(
            f"imported {result.new} new envelope(s) and {result.files} file(s); "
            f"{result.already} already here"
        )
        for case in desk_cases.arrivals_by_case(store, result)["cases"]:
            what = ", ".join(f"{n} {kind}" for kind, n in case["kinds"])
            echo(f"  {case['name']}  ({case['case'][:8]}): {what}")
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
        rows = desk_cases.list_cases(store, keys)
        lines = [_case_line(r) for r in rows]
        emit([desk_cases.as_json(r) for r in rows], as_json, lines or ["no cases yet"])


def _case_line(r: desk_cases.CaseSummary) -> str:
    """One case in `desk cases`: new marks first, so they catch the eye."""
    mark = "NEW " if r.new else (f"+{r.unread_count:<3}" if r.unread_count else "    ")
    parts = [
        mark,
        f"{r.name}  {r.case}",
        "witness" if r.witness else "report ",
        f"{r.status:<10}",
        f"last {r.last_at}",
        f"{r.envelopes} item(s), {r.files} file(s), {r.replies} reply(ies)",
    ]
    if r.assignee:
        parts.append(f"assigned to {for_terminal(r.assignee)}")
    if r.due:
        parts.append(f"reply due {r.due}" + (" OVERDUE" if r.overdue else ""))
    if r.tags:
        parts.append("tags: " + ", ".join(for_terminal(t) for t in r.tags))
    return "  ".join(parts)


def _indented(value: str) -> str:
    """A multi-line value, escaped, each line indented by two spaces."""
    return "\n".join(f"  {line}" for line in for_terminal(value, multiline=True).split("\n"))


def _answer_lines(lo: layout.Layout) -> list[str]:
    """An item's answers as text. A label from no definition is the sender's field
    name and is quoted, so it cannot pass for the desk's own lines."""
    t = for_terminal
    lines = [f"questionnaire: {t(lo.title)} ({t(lo.form)})"] if lo.title else []
    if not lo.known:
        lines.append(f"(the definition of {t(lo.form)} has not reached this desk)")
    for r in lo.rows:
        if r.section:
            lines.append(f"-- {t(r.section)} --")
        label = r.label if r.named else f"Field {json.dumps(r.field, ensure_ascii=False)}"
        lines.append(f"{t(label)}:\n{_indented(r.value)}")
    return lines


def _render_case(case: desk_cases.CaseView, definitions: dict[str, Questionnaire]) -> str:
    """A case as text; every value in it has its hidden characters escaped."""
    t = for_terminal
    kind = "witness case" if case.witness else "case"
    lines = [f"{kind.capitalize()} {case.name} ({t(case.case)}) · status: {t(case.status)}"]
    work = case.work
    if work.assignee or work.due or work.tags:
        lines.append(
            f"assigned to {t(work.assignee or 'nobody')} · reply due {work.due or '-'} · "
            f"tags: {', '.join(t(x) for x in work.tags) or '-'}"
        )
    for item in case.items:
        new = "NEW " if item.new else ""
        lang = f", in {t(item.lang)}" if item.lang else ""
        lines.append(
            f"\n== {new}{t(item.kind)} received {t(item.day)}, kept {t(item.at or '-')} "
            f"(sealed by {t(item.sealed_by)}{lang})"
        )
        if item.damaged:
            lines.append(f"DAMAGED, not shown: {t(item.damaged)}")
        lines += _answer_lines(layout.lay_out(item.content, definitions))
        for f in item.files:
            flags = [str(f["state"])]
            if f.get("location"):
                flags.append("STILL CARRIES LOCATION METADATA")
            lines.append(
                f"file: {t(str(f['name']) or '(no name)')} · {f['size']} bytes · "
                f"{t(str(f['type']) or 'unknown type')} · {', '.join(flags)}"
                + (f" · sha256 {f['sha256']}" if f.get("sha256") else "")
            )
    for reply in case.replies:
        state = "delivered" if reply.delivered else "waiting for the next outbox"
        status = f" · status set to {t(reply.status)}" if reply.status else ""
        by = f" by {t(reply.by)}" if reply.by else ""
        lines.append(
            f"\n-- our {t(reply.type)} {reply.seq} of {t(reply.day)}{by}{status} ({state})"
        )
        if reply.text:
            lines.append(_indented(reply.text))
    for note in work.notes:
        lines.append(f"\n-- note by {t(note.by)}, {note.at:%Y-%m-%d %H:%M} UTC (stays on the desk)")
        lines.append(_indented(note.text))
    return "\n".join(lines)


@desk.command("show")
@home_option
@click.argument("case")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_show(home: Path, case: str, as_json: bool) -> None:
    """Decrypt and print one case, in memory (the custody log records the view)."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        try:
            data = desk_cases.show_case(store, keys, case)
        except desk_cases.CaseError as exc:
            raise CliError(str(exc)) from exc
        text = _render_case(data, layout.known(store))
        emit(desk_cases.as_json(data), as_json, [text], multiline=True)


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
            saved = desk_replies.reply(store, keys, _resolve(store, case), status, text)
        except desk_replies.ReplyRefused as exc:
            raise CliError(str(exc)) from exc
        assert saved.item is not None
        echo(f"reply {saved.item.seq} for case {saved.item.mailbox} is ready for the next outbox")


@desk.command("invite")
@home_option
@click.option(
    "--questions",
    "questions_file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="A text file with the questions for the witness.",
)
@click.option("--case", "about", help="The case the witness is asked about.")
@click.option(
    "--language",
    type=click.Choice(sorted(LANGUAGES)),
    default="en",
    show_default=True,
    help="The language of the witness's printed sheet.",
)
def desk_invite(home: Path, questions_file: Any, about: str | None, language: str) -> None:
    """Make a witness invitation; its code is printed once, to hand over out of band."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        concerns = _resolve(store, about) if about else None
        try:
            invitation = desk_replies.invite(
                store, keys, questions_file.read(), concerns=concerns, language=language
            )
        except desk_replies.ReplyRefused as exc:
            raise CliError(str(exc)) from exc
        assert invitation.code is not None
        echo(f"Witness case {case_name(invitation.mailbox_id)} ({invitation.mailbox_id}) created.")
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
@click.option("--idle-minutes", default=15.0, show_default=True, help="Lock the keys after this.")
def desk_serve(home: Path, port: int, idle_minutes: float) -> None:
    """Serve the desk's web interface on 127.0.0.1, behind a per-launch token."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from portal.desk.web import create_desk_app

    class Quiet(WSGIRequestHandler):
        """No request log: its lines would hold the token and case ids."""

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    with _desk_home(home):
        try:
            app = create_desk_app(home, idle_seconds=max(1, round(idle_minutes * 60)))
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
        keys = _unlock(home)
        store = DeskStore(home)
        ids = [d.id for d in store.damaged()] if everything else list(items)
        try:
            done = discard_items(store, ids, keys.person)
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
        result = desk_files.save_files(store, shown.case, case_files, out, keys.person)
        for name, sha in result.saved:
            echo(f"verified  {sha}  {name}")
        for name in result.damaged:
            echo(f"DAMAGED   {name}: not written", err=True)
        for name in result.missing:
            echo(f"missing   {name}: not imported yet", err=True)
        if result.damaged:
            raise CliError(f"{len(result.damaged)} file(s) are damaged")


@desk.group("people")
def desk_people() -> None:
    """The people who can unlock this desk, each with their own passphrase."""


@desk_people.command("list")
@home_option
def people_list(home: Path) -> None:
    """Who can unlock the desk (names only)."""
    try:
        found = keystore.people(home)
    except keystore.KeystoreError as exc:
        raise CliError(str(exc)) from exc
    for p in found:
        echo(
            f"{p.name}  {'second factor' if p.second_factor else 'passphrase only'}"
            f"  added by {p.added_by or '-'} {p.added_on}"
        )


@desk_people.command("add")
@home_option
@click.argument("name")
@click.option("--second-factor", is_flag=True, help="Also require a one-time code (TOTP).")
def people_add(home: Path, name: str, second_factor: bool) -> None:
    """Add a person: you unlock first, then the new person chooses a passphrase
    (PORTAL_DESK_NEW_PASSPHRASE for scripts)."""
    with _desk_home(home):
        keys = _unlock(home)
        new = os.environ.get("PORTAL_DESK_NEW_PASSPHRASE") or click.prompt(
            f"Passphrase for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
        try:
            added = staff.add(DeskStore(home), keys, name, new, second_factor=second_factor)
        except keystore.KeystoreError as exc:
            raise CliError(str(exc)) from exc
        assert added is not None  # no one-time field: never "already done"
        echo(f"{added.name} can now unlock this desk.")
        enrolment = added.enrolment
        if enrolment is not None:
            import qrcode

            echo("Enter this secret in their authenticator app now; it is not shown again:")
            echo(f"    {enrolment.secret}")
            qr = qrcode.QRCode(border=1)
            qr.add_data(enrolment.uri)
            qr.print_ascii(out=sys.stdout)


@desk_people.command("remove")
@home_option
@click.argument("name")
def people_remove(home: Path, name: str) -> None:
    """Remove a person: their passphrase opens nothing here from now on, and any
    desk page they have open is locked at its next request."""
    with _desk_home(home):
        keys = _unlock(home)
        try:
            gone = staff.remove(DeskStore(home), keys, name)
        except keystore.KeystoreError as exc:
            raise CliError(str(exc)) from exc
        echo(f"{gone} can no longer unlock this desk.")
        echo("What they may have kept (a copy of desk.json, a backup) is in docs/threat-model.md.")


@desk_people.command("passphrase")
@home_option
def people_passphrase(home: Path) -> None:
    """Change your own passphrase."""
    with _desk_home(home):
        keys = _unlock(home)
        new = os.environ.get("PORTAL_DESK_NEW_PASSPHRASE") or click.prompt(
            "New passphrase", hide_input=True, confirmation_prompt=True, err=True
        )
        try:
            staff.change_passphrase(DeskStore(home), keys, _passphrase(), new)
        except keystore.KeystoreError as exc:
            raise CliError(str(exc)) from exc
        echo("Passphrase changed.")


@desk.command("work")
@home_option
@click.argument("case")
@click.option("--note", help="Add an internal note (it never leaves the desk).")
@click.option("--tags", help="Set the case's tags, comma-separated ('' clears them).")
@click.option("--assign", help="Assign the case to a person ('' unassigns it).")
@click.option("--due", help="The day a reply is due, like 2026-12-31 ('' clears it).")
def desk_work(
    home: Path,
    case: str,
    note: str | None,
    tags: str | None,
    assign: str | None,
    due: str | None,
) -> None:
    """Notes, tags, assignment and due dates: staff's own work on a case."""
    chosen = {"note": note, "tags": tags, "assign": assign, "due": due}
    if all(v is None for v in chosen.values()):
        raise CliError("say what to change: --note, --tags, --assign or --due")
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        case_id = _resolve(store, case)
        people = [p.name for p in keystore.people(home)]
        for kind, value in chosen.items():
            if value is None:
                continue
            try:
                casework.record(store, keys, case_id, kind, value, people)
            except casework.WorkRefused as exc:
                raise CliError(str(exc)) from exc
            echo(f"{kind} kept for case {case_name(case_id)}")


@desk.command("search")
@home_option
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_search(home: Path, query: str, as_json: bool) -> None:
    """Find the cases whose texts hold every word of QUERY (decrypted in memory)."""
    with _desk_home(home):
        keys = _unlock(home)
        hits = desk_cases.search(DeskStore(home), keys, query)
        rows = [
            {"case": h.case, "name": case_name(h.case), "where": h.where, "snippet": h.snippet}
            for h in hits
        ]
        lines = [f"{r['name']}  {r['where']:<8} {r['snippet']}" for r in rows]
        emit(rows, as_json, lines or ["nothing found"])


@desk.command("stats")
@home_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
def desk_stats(home: Path, as_csv: bool) -> None:
    """Cases by month, kind, status and tag; time to first reply and to closing."""
    with _desk_home(home):
        keys = _unlock(home)
        figures = stats.compute(desk_cases.case_facts(DeskStore(home), keys))
        if as_csv:
            click.echo(stats.to_csv(figures), nl=False)
            return
        echo(f"cases: {figures.total}, referrals: {figures.referrals}")
        for title, rows in (
            ("by month", figures.by_month),
            ("by kind", figures.by_kind),
            ("by status", figures.by_status),
            ("by tag", figures.by_tag),
        ):
            echo(f"{title}: " + (", ".join(f"{for_terminal(k)} {v}" for k, v in rows) or "-"))
        for title, d in (("first reply", figures.to_first_reply), ("closing", figures.to_close)):
            if d.median is None or d.p90 is None:
                echo(f"time to {title}: no case yet")
            else:
                echo(
                    f"time to {title}: median {stats.hours(d.median):.1f} h, "
                    f"90th percentile {stats.hours(d.p90):.1f} h ({d.count} case(s))"
                )


@desk.command("settings")
@home_option
@click.option("--onion-address", help="The portal's onion address, for invitation sheets.")
@click.option("--web-address", help="The portal's https:// address, for invitation sheets.")
def desk_settings(home: Path, onion_address: str | None, web_address: str | None) -> None:
    """Show or change the portal addresses printed on witness invitation sheets."""
    store = DeskStore(home)
    given = {
        k: v
        for k, v in (("onion_address", onion_address), ("web_address", web_address))
        if v is not None
    }
    if given:
        with _desk_home(home):
            keys = _unlock(home)
            try:
                settings.write(store, keys, given)
            except settings.SettingRefused as exc:
                raise CliError(str(exc)) from exc
    for key, value in settings.read(store).items():
        echo(f"{key}: {value or '(not set)'}")


@desk.command("export-case")
@home_option
@click.argument("case")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="A new (or empty) folder to write the case file into.",
)
def desk_export_case(home: Path, case: str, out: Path) -> None:
    """Write a verifiable case file for a lawyer or a court: the case as a
    print-ready page, its evidence, its custody entries and a signed manifest."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        try:
            made = casefile.export_case(store, keys, _resolve(store, case), out)
        except casefile.CaseFileError as exc:
            raise CliError(str(exc)) from exc
        echo(f"wrote {made.files} file(s), {made.evidence} of them evidence, to {out}")
        echo(f"manifest SHA-256 {made.manifest_sha256} (recorded in the custody log)")
        echo(f"signing key fingerprint: {fingerprint(keys.organization.verify_kid)}")
        for item in made.left_out:
            echo(f"not included: {for_terminal(item)}", err=True)


@click.command("verify-case")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--organization",
    "org_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The organization's published organization.json, to check the signer against.",
)
def verify_case(folder: Path, org_file: Path | None) -> None:
    """Check a case file: its signature, every file's hash, its custody entries.
    Needs no desk and no portal; says plainly what holds and what does not."""
    try:
        org = parse(json.loads(org_file.read_text())) if org_file is not None else None
        verdict = casefile.verify_case(folder, org)
    except (casefile.CaseFileError, OrganizationError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    echo(f"signed by the key with fingerprint {verdict.signer}")
    if org is None:
        echo("compare it with the fingerprint the organization publishes (--organization does it)")
    for item, held, why in verdict.checks:
        echo(
            f"{'OK    ' if held else 'FAILED'}  {for_terminal(item)}" + (f": {why}" if why else "")
        )
    if not verdict.ok:
        failed = sum(1 for _, held, _ in verdict.checks if not held)
        raise CliError(f"the case file does NOT verify: {failed} item(s) failed")
    echo("the case file verifies: every item is exactly what the desk signed")


@desk.command("export-table")
@home_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write: .csv or .xlsx.",
)
@click.option(
    "--show",
    type=click.Choice([*desk_cases.FILTERS, *STATUSES]),
    default="all",
    show_default=True,
    help="Which cases: a filter of the case list, or a status.",
)
@click.option("--tag", default="", help="Only cases with this tag.")
@click.option("--assignee", default="", help="Only cases assigned to this person.")
def desk_export_table(home: Path, out: Path, show: str, tag: str, assignee: str) -> None:
    """All cases (or a filter) as a table, one row per case, with the report
    form's fields; formula-shaped cells are neutralised."""
    with _desk_home(home):
        keys = _unlock(home)
        chosen = desk_cases.Selection(show=show, tag=tag, assignee=assignee)
        try:
            n = tables.export_table(DeskStore(home), keys, out, chosen)
        except tables.TableRefused as exc:
            raise CliError(str(exc)) from exc
        echo(f"wrote {n} case(s) to {out}")
        echo("It holds what reporters wrote, in the clear: keep it on encrypted storage.")


def _import_referral(store: DeskStore, keys: keystore.DeskKeys, path: Path) -> None:
    try:
        opened = referrals.import_referral(store, keys, path)
    except referrals.ReferralRefused as exc:
        raise CliError(f"referral refused, nothing imported: {exc}") from exc
    body = opened.body
    echo(
        f"referral from {for_terminal(opened.partner.name)} (their case "
        f"{for_terminal(str(opened.header.get('case_name')))}): {len(body.get('items', []))} "
        f"item(s), {len(body.get('files', []))} file(s); kept as {opened.sha256[:12]}"
    )
    echo("read it with `portal desk referrals --show ID`")


def _interactive() -> bool:
    """Whether a person is at the terminal to answer (a script passes --yes)."""
    return sys.stdin.isatty()


@desk.group("partner")
def desk_partner() -> None:
    """Partner legal-aid organizations cases can be referred to, and from."""


@desk_partner.command("add")
@home_option
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--yes",
    is_flag=True,
    help="The fingerprints were compared already (implied when no one is at a terminal).",
)
def partner_add(home: Path, file: Path, yes: bool) -> None:
    """Add a partner from its public organization.json, after comparing fingerprints."""
    with _desk_home(home):
        keys = _unlock(home)
        try:
            org = referrals.read_partner_file(file)
        except referrals.ReferralRefused as exc:
            raise CliError(str(exc)) from exc
        echo(f"{for_terminal(org.name)}")
        echo(f"  encryption key fingerprint: {fingerprint(org.encrypt[0].kid)}")
        echo(f"  signing key fingerprint:    {fingerprint(org.verify_kid)}")
        if (
            not yes
            and _interactive()
            and not click.confirm(
                "Do both match what the partner told you (by phone, in person)?", err=True
            )
        ):
            raise CliError("not added: compare the fingerprints with the partner first")
        try:
            referrals.add_partner(DeskStore(home), keys, org)
        except referrals.ReferralRefused as exc:
            raise CliError(str(exc)) from exc
        echo(f"{for_terminal(org.name)} is a partner now (confirmed by {keys.person}).")


@desk_partner.command("list")
@home_option
def partner_list(home: Path) -> None:
    """The partners this desk refers to and accepts referrals from."""
    found = referrals.partners(DeskStore(home))
    for p in found:
        enc, sig = p.fingerprints
        echo(f"{for_terminal(p.name)}  signing {sig}  encryption {enc}  added by {p.added_by}")
    if not found:
        echo("no partners yet")


@desk.command("refer")
@home_option
@click.argument("case")
@click.option("--to", "to", required=True, help="The partner (its name).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write."
)
@click.option("--note", default="", help="A note for the partner.")
@click.option("--item", "items", type=int, multiple=True, help="Only this item (repeatable).")
def desk_refer(
    home: Path, case: str, to: str, out: Path, note: str, items: tuple[int, ...]
) -> None:
    """Refer a case to a partner, if the reporter agreed to sharing: the chosen
    items and their evidence, sealed to the partner and signed by this desk."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        try:
            partner = referrals.find_partner(store, to)
            made = referrals.refer(
                store, keys, _resolve(store, case), partner, out, note=note, items=list(items)
            )
        except referrals.ReferralRefused as exc:
            raise CliError(str(exc)) from exc
        echo(f"wrote a referral to {for_terminal(partner.name)}: {made.items} item(s), "
             f"{made.files} file(s), SHA-256 {made.sha256}")  # fmt: skip
        echo("The reporter is told (status: referred to legal aid) with the next outbox.")


@desk.command("referrals")
@home_option
@click.option("--show", "show", default="", help="Open this referral (its id or a prefix).")
def desk_referrals(home: Path, show: str) -> None:
    """Cases partners referred to this desk, or one of them in full."""
    with _desk_home(home):
        keys = _unlock(home)
        store = DeskStore(home)
        if not show:
            names = {p.organization.verify_kid: p.name for p in referrals.partners(store)}
            rows = referrals.received(store)
            for r in rows:
                who = for_terminal(names.get(r.partner, "?"))
                when = f"{r.received_at:%Y-%m-%d %H:%M} UTC"
                echo(f"{r.sha256[:12]}  from {who}  their case {r.their_case}  received {when}")
            if not rows:
                echo("no referrals received")
            return
        try:
            opened = referrals.open_received(store, keys, show)
        except referrals.ReferralRefused as exc:
            raise CliError(str(exc)) from exc
        body = opened.body
        echo(f"Referred by {for_terminal(opened.partner.name)} "
             f"(signing key {opened.partner.fingerprints[1]}), their case "
             f"{for_terminal(str(body.get('case', {}).get('name')))}")  # fmt: skip
        if body.get("note"):
            echo(f"Their note:\n{_indented(str(body['note']))}", multiline=True)
        definitions = {**layout.known(store), **referrals.definitions_in(opened)}
        for item in body.get("items", []):
            kind, day = for_terminal(str(item.get("kind"))), for_terminal(str(item.get("day")))
            echo(f"\n== {kind} of {day}")
            for line in _answer_lines(layout.lay_out(item, definitions)):
                echo(line, multiline=True)
        for f in body.get("files", []):
            echo(f"file: {for_terminal(str(f.get('name')))}  sha256 {f.get('sha256')}")


@desk.command("publish-figures")
@home_option
@click.option(
    "--min-count",
    type=click.IntRange(min=2),
    default=transparency.DEFAULT_MIN,
    show_default=True,
    help="Withhold any count under this, and group months until each holds this many.",
)
def desk_publish_figures(home: Path, min_count: int) -> None:
    """Publish aggregate figures on the portal's /transparency page: they travel,
    signed, in every outbox from now on (run it again to update them)."""
    with _desk_home(home):
        keys = _unlock(home)
        figures = transparency.publish(DeskStore(home), keys, min_count)

        def shown(n: int | None) -> str:
            return str(n) if n is not None else f"fewer than {min_count}"

        echo(f"reports received: {shown(figures['total_reports'])}")
        for p in figures["reports_by_period"]:
            echo(f"  {p['from']} to {p['to']}: {p['count']}")
        for status, n in figures["by_status"].items():
            echo(f"  {status}: {shown(n)}")
        echo(f"referrals: {shown(figures['referrals'])}")
        echo("They leave with the next outbox; the portal may withhold more (its own threshold).")
