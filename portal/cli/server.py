"""The server's commands: bundles in and out, retention, relay staff accounts.

Each needs the portal's app context (configuration, database); the root group
loads this module, and with it the online app, only for these commands.
"""

from __future__ import annotations

import io
from pathlib import Path

import click
import qrcode
from flask.cli import with_appcontext

from portal.cli.output import CliError, echo, emit
from portal.protocol.bundles import BundleError
from portal.server.inbox import export_inbox
from portal.server.outbox import import_outbox, portal_checkpoints
from portal.server.staff import StaffError
from portal.server.web.services import services
from portal.server.web.sessions import SessionStore
from portal.server.web.work import LIFETIME_HOURS, current_hour


@click.command("export-inbox")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_inbox_command(file: Path) -> None:
    """Write what the desk has not acknowledged (up to PORTAL_INBOX_ITEMS) into an inbox."""
    svc = services()
    manifest = export_inbox(svc.mailboxes, svc.organization, file, svc.config.inbox_items)
    more = "; more are waiting for the next inbox" if manifest.extra.get("more") else ""
    echo(f"wrote {len(manifest.items)} item(s) to {file}{more}")


@click.command("import-outbox")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@with_appcontext
def import_outbox_command(file: Path) -> None:
    """Verify the desk's signature on an outbox bundle and apply all of it, or none."""
    svc = services()
    try:
        result = import_outbox(svc.mailboxes, svc.organization, file, svc.config.transparency_min)
    except BundleError as exc:
        raise CliError(f"outbox refused, nothing changed: {exc}") from exc
    echo(
        f"applied outbox {result.seq}: {result.replies} reply item(s), "
        f"{result.invitations} invitation(s), {result.acked} acknowledged envelope(s)"
    )
    for note in result.refused:
        echo(f"not applied: {note}", err=True)
    removed = svc.mailboxes.purge_acknowledged(svc.config.ack_grace_days)
    if removed:
        echo(f"deleted {removed} acknowledged envelope(s) past the grace period")


@click.command("checkpoints")
@with_appcontext
def checkpoints_command() -> None:
    """Print the desk's signed custody heads this portal holds (JSON), for
    `portal desk verify-log --checkpoints FILE` on the desk."""
    emit(portal_checkpoints(services().mailboxes), True, [])


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Run from cron: delete acknowledged ciphertext past the grace period,
    uploads that were never attached to a report, and dead sessions."""
    svc = services()
    removed = svc.mailboxes.purge_acknowledged(svc.config.ack_grace_days)
    expired = svc.uploads.expire(svc.config.upload_expiry_days)
    idle = svc.mailboxes.purge_idle(svc.config.mailbox_retention_days)
    stray = svc.mailboxes.sweep_orphans()
    dead = SessionStore(svc.db).purge()
    svc.spent.purge(current_hour() - LIFETIME_HOURS)
    echo(
        f"deleted {removed} acknowledged item(s) and {expired} abandoned upload(s); "
        f"{idle} idle case(s) past retention; {stray} stray file(s) from interrupted writes; "
        f"{dead} dead session(s)"
    )


@click.group()
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
        emit(data, True, [])
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
    emit(rows, as_json, [f"{r['name']}  created {r['created']}" for r in rows] or ["no accounts"])


# --- the air-gapped desk ------------------------------------------------------


COMMANDS: dict[str, click.Command] = {
    "export-inbox": export_inbox_command,
    "import-outbox": import_outbox_command,
    "checkpoints": checkpoints_command,
    "purge": purge_command,
    "staff": staff,
}
