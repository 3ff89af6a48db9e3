"""Page weight: bytes on the wire (compressed) and requests per reporter page,
cold and warm cache, as Chromium's own network log counts them."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.harness.browsers import chromium

PAGES = ("/", "/report", "/case", "/safety")


def _transferred(drv: Any, base: str) -> tuple[int, int, int]:
    """(bytes on the wire, requests, of which the crypto worker's script) to the
    portal since the last call. The page fetches the worker's script itself, to
    check its integrity, so it shows in the page's own log."""
    sent: dict[str, str] = {}
    total = requests = worker = 0
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif msg["method"] == "Network.loadingFinished":
            url = sent.get(params["requestId"], "")
            if url.startswith(base):
                size = int(params.get("encodedDataLength", 0))
                total += size
                requests += 1
                worker += size if "/crypto-worker-" in url else 0
    return total, requests, worker


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
                    total, requests, worker = _transferred(drv, url)
                    out[f"{page} {mode} {cache}"] = {
                        "bytes": total,
                        "requests": requests,
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
