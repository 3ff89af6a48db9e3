"""What every ``portal`` command prints goes through here, hidden characters escaped."""

from __future__ import annotations

from typing import Any

import click

from portal.common.safe_text import for_terminal, json_for_terminal


class CliError(click.ClickException):
    """A ClickException whose message has its hidden characters escaped."""

    def __init__(self, message: str) -> None:
        super().__init__(for_terminal(message))


def echo(text: str = "", *, err: bool = False, multiline: bool = False) -> None:
    """click.echo of text with its hidden characters escaped (line breaks kept
    only with multiline)."""
    click.echo(for_terminal(text, multiline=multiline), err=err)


def emit(data: Any, as_json: bool, lines: list[str], *, multiline: bool = False) -> None:
    """Print data as escaped JSON, or each of lines as escaped text."""
    if as_json:
        click.echo(json_for_terminal(data))
        return
    for line in lines:
        echo(line, multiline=multiline)
