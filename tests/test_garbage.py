"""Garbage at every route: property-based (hypothesis) malformed forms, JSON,
multipart bodies, base64, sizes and headers. No 5xx, a message on every 4xx,
and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.server.models import Attachment, Envelope, Mailbox, Reply
from portal.server.web.services import services
from tests.harness.web import NO_BODY_ROUTES, csrf_token, post_routes

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
B64ISH = st.text(alphabet="ABCDEFabcdef0123456789-_=+/!", max_size=120)
FIELD_NAMES = st.sampled_from(
    [
        "what_happened",
        "when",
        "where",
        "may_contact",
        "code",
        "message",
        "last_group",
        "rotation",
        "new_code",
        "csrf_token",
        "files",
        "x",
    ]
)
FORM = st.dictionaries(FIELD_NAMES, st.text(max_size=300) | B64ISH, max_size=6)
API_KEYS = st.sampled_from(
    [
        "envelope",
        "mailbox",
        "lookup",
        "index",
        "wrapped_key",
        "rotation",
        "attachments",
        "size",
        "part_size",
        "v",
        "kind",
        "body",
    ]
)
API_BODY = st.dictionaries(API_KEYS, JSON | B64ISH, max_size=5) | JSON
HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "Accept-Language", "X-Forwarded-For", "Host", "Range"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    max_size=3,
)

# Read from the apps' URL maps, so a new route is covered the day it is added.
FORM_ROUTES, API_ROUTES = post_routes()


def _state(app: Flask) -> tuple[int, ...]:
    with app.app_context(), services().db.reading() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (Mailbox, Envelope, Reply, Attachment)
        )


def _assert_clear(resp: Any) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code >= 400:
        if resp.mimetype == "application/json":
            assert resp.get_json()["message"]
        else:
            body = resp.get_data(as_text=True)
            assert 'role="alert"' in body or "error-summary" in body or "error-text" in body
            assert "Traceback" not in body


@pytest.mark.parametrize("route", FORM_ROUTES)
@SETTINGS
@given(form=FORM, headers=HEADERS, use_token=st.booleans())
def test_forms_survive_garbage(
    app: Flask,
    client: FlaskClient,
    route: str,
    form: dict[str, str],
    headers: dict[str, str],
    use_token: bool,
) -> None:
    before = _state(app)
    headers.pop("Host", None)
    data = dict(form)
    if use_token:
        data["csrf_token"] = csrf_token(client, "/case")
    resp = client.post(route, data=data, headers=headers)
    _assert_clear(resp)
    if resp.status_code not in (200, 303) or route != "/report":  # 303: a report was sent
        assert _state(app) == before


@pytest.mark.parametrize("route", FORM_ROUTES + API_ROUTES)
def test_deeply_nested_json_is_bad_json_not_a_crash(client: FlaskClient, route: str) -> None:
    resp = client.post(
        route,
        data="[" * 100_000,
        headers={"Content-Type": "application/json", "X-CSRFToken": csrf_token(client, "/case")},
    )
    assert resp.status_code < 500
    if route not in NO_BODY_ROUTES:
        assert resp.status_code >= 400


@pytest.mark.parametrize("route", API_ROUTES)
@SETTINGS
@given(body=API_BODY, raw=st.binary(max_size=200), as_raw=st.booleans(), headers=HEADERS)
def test_api_survives_garbage(
    app: Flask,
    client: FlaskClient,
    route: str,
    body: Any,
    raw: bytes,
    as_raw: bool,
    headers: dict[str, str],
) -> None:
    before = _state(app)
    headers.pop("Host", None)
    headers["X-CSRFToken"] = csrf_token(client, "/case")
    headers.setdefault("Content-Type", "application/json")
    resp = client.post(route, data=raw if as_raw else json.dumps(body), headers=headers)
    _assert_clear(resp)
    assert _state(app)[:3] == before[:3]


@SETTINGS
@given(
    number=st.integers(min_value=-5, max_value=10**6),
    raw=st.binary(max_size=300),
    upload=st.text(alphabet="0123456789abcdef", min_size=0, max_size=40),
)
def test_parts_survive_garbage(
    app: Flask, client: FlaskClient, number: int, raw: bytes, upload: str
) -> None:
    before = _state(app)
    headers = {
        "X-CSRFToken": csrf_token(client, "/case"),
        "Content-Type": "application/octet-stream",
    }
    for method in ("PUT", "GET", "DELETE"):
        path = (
            f"/api/uploads/{upload or 'x'}/parts/{number}"
            if method == "PUT"
            else f"/api/uploads/{upload or 'x'}"
        )
        resp = client.open(path, method=method, data=raw, headers=headers)
        _assert_clear(resp)
    assert _state(app) == before


@SETTINGS
@given(
    path=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="?#%"),
        max_size=40,
    ),
    query=st.text(max_size=40),
)
def test_get_anywhere_is_never_a_server_error(client: FlaskClient, path: str, query: str) -> None:
    # PATH_INFO set directly, as a server passes it on: the test client would
    # read "//[…" as a host name and refuse to build the request at all.
    resp = client.get(
        "/",
        query_string={"q": query, "token": query},
        environ_overrides={"PATH_INFO": "/" + path},
    )
    assert resp.status_code < 500
    assert "Content-Security-Policy" in resp.headers
