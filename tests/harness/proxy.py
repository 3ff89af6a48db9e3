"""A forward proxy between a browser and the live portal (127.0.0.1 only), for
what a network can do to the page's traffic: change a script's bytes, or lose
the answer to a request the portal has already handled (a Tor circuit that
breaks on the way back)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from tests.harness.live import loopback_server

HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "host"}


class Proxy(BaseHTTPRequestHandler):
    """One request a connection (HTTP/1.0), forwarded whole."""

    tamper: ClassVar[bool] = False  # append a line to the crypto worker's script
    lose_answers: ClassVar[dict[str, int]] = {}  # path end -> answers still to lose
    lost: ClassVar[list[str]] = []  # paths whose answers were lost, in order

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP | {"accept-encoding"}
        }
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.path, data=body, method=self.command, headers=headers
        )
        try:
            upstream = urllib.request.urlopen(request, timeout=60)  # noqa: S310
        except urllib.error.HTTPError as refused:
            upstream = refused
        data = upstream.read()
        for end, left in self.lose_answers.items():
            if left > 0 and self.path.endswith(end) and self.command == "POST":
                self.lose_answers[end] = left - 1
                self.lost.append(end)
                self.close_connection = True  # handled upstream; nothing comes back
                return
        if self.tamper and "/crypto-worker-" in self.path:
            data += b"\n;self.postMessage('tampered');\n"
        self.send_response(upstream.status)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP | {"content-length", "content-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def proxy() -> Iterator[str]:
    """The proxy's address, for Chromium's ``--proxy-server``; its behaviour is
    reset on the way in and out."""
    Proxy.tamper, Proxy.lose_answers, Proxy.lost = False, {}, []
    try:
        with loopback_server(Proxy) as url:
            yield url
    finally:
        Proxy.tamper, Proxy.lose_answers, Proxy.lost = False, {}, []


def through(proxy_url: str) -> tuple[str, ...]:
    """Chromium's arguments to send even loopback traffic through the proxy."""
    return (f"--proxy-server={proxy_url}", "--proxy-bypass-list=<-loopback>")
