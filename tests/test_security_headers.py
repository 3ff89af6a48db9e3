"""DESIGN §12 headers on real responses: pages, errors, API and static files."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.server.app import create_app
from portal.server.config import Config

PAGES = ["/", "/report", "/no-such-page"]


def _static_path(app: Flask) -> str:
    return "/static/" + app.extensions["portal"].assets["portal.js"].url_path


@pytest.mark.parametrize("path", [*PAGES, "STATIC"])
def test_every_response_carries_the_security_headers(
    app: Flask, client: FlaskClient, path: str
) -> None:
    resp = client.get(_static_path(app) if path == "STATIC" else path)
    h = resp.headers
    csp = h["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp.replace(
        "'wasm-unsafe-eval'", ""
    )
    assert "frame-ancestors 'none'" in csp and h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Cross-Origin-Opener-Policy"] == "same-origin"
    assert h["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "camera=()" in h["Permissions-Policy"] and "geolocation=()" in h["Permissions-Policy"]
    assert "Strict-Transport-Security" not in h
    assert "Onion-Location" not in h


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_never_cached(client: FlaskClient, path: str) -> None:
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_hashed_assets_are_immutable(app: Flask, client: FlaskClient) -> None:
    resp = client.get(_static_path(app))
    assert resp.status_code == 200
    assert "immutable" in resp.headers["Cache-Control"]


def test_session_cookie_is_httponly_and_strict(client: FlaskClient) -> None:
    resp = client.get("/report")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    assert "Expires" not in cookie and "Max-Age" not in cookie  # a browser-session cookie


def test_under_tls_cookies_are_secure_and_hsts_is_sent(config: Config) -> None:
    app = create_app(replace(config, tls=True))
    with app.test_client() as c:
        resp = c.get("/report", base_url="https://portal.example")
        assert "Secure" in resp.headers["Set-Cookie"]
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def test_onion_location_is_sent_when_configured(config: Config) -> None:
    onion = "a" * 56 + ".onion"
    app = create_app(replace(config, onion_address=onion, tls=True))
    with app.test_client() as c:
        resp = c.get("/report", base_url="https://portal.example")
        assert resp.headers["Onion-Location"] == f"http://{onion}/report"
        on_onion = c.get("/report", base_url=f"http://{onion}")
        assert "Strict-Transport-Security" not in on_onion.headers


def test_pages_have_no_inline_script_or_style(client: FlaskClient) -> None:
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert " on" + "click=" not in html


def test_every_page_has_a_quick_exit_and_the_fingerprint(client: FlaskClient, app: Flask) -> None:
    fp = app.extensions["portal"].organization.fingerprint
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        assert 'id="quick-exit"' in html
        assert fp in html


def test_errors_show_no_stack_trace(client: FlaskClient) -> None:
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    assert "Traceback" not in resp.get_data(as_text=True)
    resp = client.post("/")
    assert resp.status_code in (400, 405)


def test_built_assets_are_sent_gzipped_when_accepted_and_keep_their_integrity(
    app: Flask, client: FlaskClient
) -> None:
    import base64
    import gzip
    import hashlib

    asset = app.extensions["portal"].assets["crypto-worker.js"]
    path = "/static/" + asset.url_path
    plain = client.get(path)
    packed = client.get(path, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "immutable" in packed.headers["Cache-Control"]
    assert "Content-Security-Policy" in packed.headers
    assert len(packed.data) < len(plain.data) / 2
    body = gzip.decompress(packed.data)
    assert body == plain.data
    digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert asset.integrity == f"sha384-{digest}"
    page = client.get("/report", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in page.headers  # pages reflect input: never compressed
