"""A load client's browser: one kept-alive connection, its cookies, the form's token.

The same surface as the tests' ``Session`` (tests/harness/http.py), but it keeps
its connection open between requests, as browsers and load tools do, so the
figures price the server's work rather than a TCP handshake per request and
urllib's own overhead on the same two cores.
"""

from __future__ import annotations

import http.client
import urllib.parse
from http.cookies import SimpleCookie

from tests.harness.http import Response, Session

REDIRECTS = (301, 302, 303, 307, 308)


class KeptAlive(Session):
    """The tests' client, but for how it sends: the form, API and token handling
    are the same (inherited)."""

    def __init__(self, base: str, timeout: float = 60) -> None:
        super().__init__(base, timeout)
        parts = urllib.parse.urlsplit(base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        head = dict(headers)
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):  # the server may have closed an idle connection
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request(method, path, body=body, headers=head)
                resp = self._conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, ConnectionError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if resp.will_close:
                self._conn.close()
                self._conn = None
            for name, value in resp.getheaders():
                if name.lower() == "set-cookie":
                    self._keep(value)
            return Response(resp.status, data, dict(resp.getheaders()))
        raise AssertionError("unreachable")

    def _keep(self, header: str) -> None:
        for name, morsel in SimpleCookie(header).items():
            if morsel.value == "" or morsel["max-age"] == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        resp = self._send(method, path, body, headers or {})
        hops = 0
        while resp.status in REDIRECTS and hops < 5:  # as a browser follows a POST's 303
            path = urllib.parse.urlsplit(resp.headers.get("Location", "/")).path
            resp = self._send("GET", path, None, {})
            hops += 1
        return resp

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
