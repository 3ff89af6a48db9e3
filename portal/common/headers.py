"""Security headers on every response, pages, errors and static files alike (DESIGN §12)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Flask, Response, request, send_file

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        # blob: only for the crypto worker, built from bytes checked against
        # their Subresource Integrity hash (see static/src/page/worker-client.js).
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "manifest-src 'none'",
    ]
)

PERMISSIONS = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
        "interest-cohort",
        "browsing-topics",
    )
)

IMMUTABLE = "public, max-age=31536000, immutable"


def install(app: Flask, *, tls: bool, onion_address: str | None) -> None:
    """Register the after-request hook that sets every header."""

    @app.after_request
    def _headers(response: Response) -> Response:
        h = response.headers
        h["Content-Security-Policy"] = CSP
        h["Referrer-Policy"] = "no-referrer"
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        h["Cross-Origin-Embedder-Policy"] = "require-corp"
        h["Permissions-Policy"] = PERMISSIONS
        if request.path.startswith("/static/dist/") and response.status_code == 200:
            h["Cache-Control"] = IMMUTABLE
        else:
            h["Cache-Control"] = "no-store"
            h["Pragma"] = "no-cache"
        host = request.host.split(":")[0]
        if onion_address:
            h["Onion-Location"] = f"http://{onion_address}{request.full_path.rstrip('?')}"
        if tls and not host.endswith(".onion"):
            h["Strict-Transport-Security"] = "max-age=63072000"
        h.pop("Server", None)
        return response


def serve_precompressed(app: Flask) -> None:
    """Send static/dist/*.gz to browsers that accept gzip.

    Only the immutable build output is compressed: HTML pages are not, since
    they reflect what a reporter typed next to CSRF tokens (the BREACH shape).
    """
    static = Path(str(app.static_folder))

    @app.before_request
    def _gzip_static() -> Response | None:
        if not request.path.startswith("/static/dist/") or request.method != "GET":
            return None
        if "gzip" not in request.headers.get("Accept-Encoding", ""):
            return None
        relative = request.path.removeprefix("/static/")
        packed = (static / relative).with_name((static / relative).name + ".gz")
        if ".." in relative or not packed.is_file():
            return None
        response = send_file(
            packed, mimetype=mimetypes.guess_type(relative)[0], max_age=0, conditional=True
        )
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        return response
