"""A plain HTTP client that keeps a session cookie: the shape of a JS-less
script driving the portal, used by the load run and the live tests."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from portal.protocol.pow import proof_for

CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Session:
    def __init__(self, base: str, timeout: float = 60) -> None:
        self.base = base
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.token = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        req = urllib.request.Request(  # noqa: S310 - http(s) to the portal under test
            self.base + path,
            data=body,
            method=method,
            headers=headers or {},
        )
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read(), dict(err.headers))

    def get(self, path: str) -> Response:
        resp = self.request("GET", path)
        match = CSRF.search(resp.text)
        if match:
            self.token = match.group(1)
        return resp

    def form(self, path: str, fields: dict[str, str]) -> Response:
        body = urllib.parse.urlencode({"csrf_token": self.token, **fields}).encode()
        return self.request(
            "POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}
        )

    def paid(self, path: str, payload: dict[str, Any]) -> Response:
        """POST JSON with a solved proof of work, as the browser's pages do."""
        offer = self.api("POST", "/api/pow")
        if offer.status != 200:
            return offer
        return self.api("POST", path, {**payload, "pow": proof_for(offer.json())})

    def api(
        self, method: str, path: str, payload: Any = None, raw: bytes | None = None
    ) -> Response:
        headers = {"X-CSRFToken": self.token}
        if raw is not None:
            headers["Content-Type"] = "application/octet-stream"
            return self.request(method, path, raw, headers)
        headers["Content-Type"] = "application/json"
        return self.request(method, path, json.dumps(payload or {}).encode(), headers)
