"""The ``portal`` command: server commands and the ``desk`` group (DESIGN §13)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import FlaskGroup, with_appcontext

from . import create_app
from .bundles import BundleError
from .desk import cases as desk_cases
from .desk import keystore
from .desk.store import DeskStore
from .inbox import export_inbox
from .organization import fingerprint
from .web.services import services

PASSPHRASE_ENV = "PORTAL_DESK_PASSPHRASE"  # noqa: S105 - a variable name


@click.group(cls=FlaskGroup, create_app=lambda: create_app())
def main() -> None:
    """The secure reporting portal."""


@main.command("export-inbox")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_inbox_command(file: Path) -> None:
    """Write every envelope the desk has not acknowledged into an inbox bundle."""
    svc = services()
    manifest = export_inbox(svc.mailboxes, svc.organization, file)
    click.echo(f"wrote {len(manifest.items)} envelope(s) to {file}")


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
        raise click.ClickException(str(exc)) from exc


def _emit(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        click.echo(text)


@main.group()
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
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Desk keys created in {home}.")
    click.echo(f"Copy {home / keystore.ORG_FILE} to the portal's keys/organization.json.")
    click.echo(f"Key fingerprint: {fingerprint(org.encrypt[0].kid)}")


@desk.command("import")
@home_option
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def desk_import(home: Path, bundle: Path) -> None:
    """Check an inbox bundle whole, then keep its new envelopes (still encrypted)."""
    keys = _unlock(home)
    try:
        result = desk_cases.import_inbox(DeskStore(home), keys, bundle)
    except BundleError as exc:
        raise click.ClickException(f"bundle refused, nothing imported: {exc}") from exc
    click.echo(f"imported {result.new} new envelope(s); {result.already} already here")


@desk.command("cases")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_list(home: Path, as_json: bool) -> None:
    """List the cases on this desk."""
    _unlock(home)
    rows = desk_cases.list_cases(DeskStore(home))
    text = (
        "\n".join(f"{r['case']}  received {r['received']}  {r['envelopes']} item(s)" for r in rows)
        or "no cases yet"
    )
    _emit(rows, as_json, text)


def _render_case(case: dict[str, Any]) -> str:
    lines = [f"Case {case['case']}"]
    for item in case["items"]:
        lines.append(f"\n== {item['kind']} received {item['day']} (sealed by {item['sealed_by']})")
        for name, value in item["content"].get("fields", {}).items():
            if value:
                lines.append(f"{name.replace('_', ' ').capitalize()}:\n  {value}")
    return "\n".join(lines)


@desk.command("show")
@home_option
@click.argument("case")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def desk_show(home: Path, case: str, as_json: bool) -> None:
    """Decrypt and print one case (in memory; nothing is written)."""
    keys = _unlock(home)
    try:
        data = desk_cases.show_case(DeskStore(home), keys, case)
    except desk_cases.CaseError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(data, as_json, _render_case(data))
