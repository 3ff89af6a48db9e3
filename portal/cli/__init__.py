"""The ``portal`` command (DESIGN §13): the server's commands and the ``desk`` group.

Each side's commands live in a module of their own and are loaded only when
named, so ``portal desk …`` on the air-gapped desk never loads the online app.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from portal import create_app

    return create_app()


class _PortalGroup(FlaskGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        from portal.cli import server

        return sorted({"desk", "verify-case", *server.COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "desk":
            from portal.cli.desk import desk

            return desk
        if name == "verify-case":  # a lawyer's machine: no desk, no portal
            from portal.cli.desk import verify_case

            return verify_case
        from portal.cli import server

        return server.COMMANDS.get(name) or super().get_command(ctx, name)


@click.group(cls=_PortalGroup, create_app=_create_app)
def main() -> None:
    """The secure reporting portal."""
