"""Page weight: bytes on the wire (compressed) and requests per reporter page,
cold and warm cache, as Chromium's own network log counts them."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from tests.e2e.browsers import chromium

PAGES = ("/", "/report", "/case", "/safety")


def _transferred(drv: Any, base: str) -> tuple[int, int]:
    """(bytes on the wire, requests) to the portal since the last call."""
    sent: dict[str, str] = {}
    total = requests = 0
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif msg["method"] == "Network.loadingFinished" and sent.get(
            params["requestId"], ""
        ).startswith(base):
            total += int(params.get("encodedDataLength", 0))
            requests += 1
    return total, requests


def _worker_bytes(base: str, page_html: str) -> int:
    """The crypto worker's script as the server sends it (gzip), headers included.

    The page starts it at load; a dedicated worker's requests do not show in the
    page's network log, so it is fetched once more here, the same way.
    """
    marker = 'data-worker="'
    if marker not in page_html:
        return 0
    path = page_html.split(marker)[1].split('"')[0]
    req = urllib.request.Request(base + path, headers={"Accept-Encoding": "gzip"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
        return len(resp.read()) + sum(len(k) + len(v) + 4 for k, v in resp.headers.items())


def run(url: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for mode in ("js", "nojs"):
        with chromium(mode) as drv:
            drv.get("about:blank")
            _transferred(drv, url)
            for page in PAGES:
                for cache in ("cold", "warm"):
                    drv.get(url + page)
                    time.sleep(1.0)
                    total, requests = _transferred(drv, url)
                    worker = 0
                    if mode == "js" and cache == "cold":
                        worker = _worker_bytes(url, drv.page_source)
                    out[f"{page} {mode} {cache}"] = {
                        "bytes": total + worker,
                        "requests": requests + (1 if worker else 0),
                        "worker": worker,
                    }
                drv.get("about:blank")
                drv.execute_cdp_cmd("Network.clearBrowserCache", {})
                _transferred(drv, url)
    return out


def report(r: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"{'page weight':<24}{'KB':>9}{'requests':>10}{'  of which crypto library':>27}"]
    for key, v in r.items():
        lines.append(
            f"{key:<24}{v['bytes'] / 1000:>9.1f}{v['requests']:>10}{v['worker'] / 1000:>20.1f} KB"
        )
    report_cold = r["/report js cold"]
    lines.append(
        f"  /report with the crypto library: {report_cold['bytes'] / 1000:.0f} KB "
        f"(target <= 450 KB: ratio {report_cold['bytes'] / 450_000:.2f}); without it: "
        f"{(report_cold['bytes'] - report_cold['worker']) / 1000:.0f} KB "
        f"(target < 60 KB: ratio {(report_cold['bytes'] - report_cold['worker']) / 60_000:.2f})"
    )
    return lines
