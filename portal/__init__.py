"""The secure reporting portal, in three parts the folders name:

- ``portal.protocol``: what the reporter's browser, the server and the desk all
  speak (codes, envelopes, file streams, replies, bundles). Pure: no Flask, no
  SQLAlchemy, no server or desk code. Each browser-facing module has a twin of
  the same name under ``static/src/protocol/``.
- ``portal.server``: the online portal: configuration, storage, the web pages
  and API, the relay staff's pages.
- ``portal.desk``: the air-gapped desk. It never imports the server.

``portal.common`` holds plumbing both sides use (atomic writes, blob files, the
database engine, safe text, response headers). ``portal.cli`` is the ``portal``
command, one group per side.

This root imports nothing: ``portal:create_app()`` (what gunicorn is given)
loads the online app only when called, so the desk never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app", "create_relay_app"]


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """The public portal; see :func:`portal.server.app.create_app`."""
    from portal.server.app import create_app as create

    return create(*args, **kwargs)


def create_relay_app(*args: Any, **kwargs: Any) -> Flask:
    """The relay staff's app; see :func:`portal.server.app.create_relay_app`."""
    from portal.server.app import create_relay_app as create

    return create(*args, **kwargs)
