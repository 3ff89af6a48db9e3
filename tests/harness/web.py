"""Talking to the app as a browser would, in tests and benchmarks: the page's CSRF
token, JSON posts that pay their proof of work, and the routes that take a POST."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from portal.protocol.pow import proof_for
from portal.server.config import Config

PASSPHRASE = "correct horse battery staple"
CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/report") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def api_post(client: FlaskClient, path: str, body: Any, page: str = "/report") -> Any:
    """POST JSON as the browser does: with the page's CSRF token and, where the
    route asks for one, a solved proof of work."""
    headers = {"X-CSRFToken": csrf_token(client, page)}
    if path in PAID_ROUTES:
        offer = client.post("/api/pow", headers=headers).get_json()
        body = {**body, "pow": proof_for(offer)}
    return client.post(path, json=body, headers=headers)


PAID_ROUTES = ("/api/reports", "/api/uploads", "/api/case/message")


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Every file under root whose bytes contain needle (database and WAL included)."""
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# Routes that read no body (leaving, logging out, asking for a proof-of-work
# challenge): garbage in a body is ignored there, not refused.
NO_BODY_ROUTES = ("/case/leave", "/api/case/leave", "/api/pow", "/staff/logout")


def post_routes() -> tuple[list[str], list[str]]:
    """Every route that takes a POST (or PUT) without a variable part, read from the
    apps' own URL maps: (form routes, JSON API routes). A new route is covered by
    the garbage tests the moment it exists."""
    from portal.server.web import api, cases, language, page_context, relay, reporter

    app = Flask("routes")
    for bp in (reporter.bp, cases.bp, api.bp, language.bp, page_context.bp, relay.bp):
        app.register_blueprint(bp)
    found = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if ({"POST", "PUT"} & (rule.methods or set())) and not rule.arguments
    )
    return [r for r in found if not r.startswith("/api/")], [
        r for r in found if r.startswith("/api/")
    ]


def run_sql(config: Config, query: str, **params: object) -> list[tuple[Any, ...]]:
    """One statement straight on the portal's database (SQLite or PostgreSQL), as an
    attacker with the database would: its rows, committed."""
    engine = create_engine(config.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()
