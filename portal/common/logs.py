"""Logging that cannot leak: no addresses, user agents, codes or bodies.

The portal logs only its own messages; this filter is a second line that
drops anything shaped like an IP address or a long digit run before it is
written, whoever logged it.
"""

from __future__ import annotations

import logging
import re

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}")
_DIGIT_RUN = re.compile(r"(?:\d[\s\-.]?){12,}")
_REDACTED = "[redacted]"


def _ipv6(match: re.Match[str]) -> str:
    """A run of hex and colons is an address if compressed or long (not a clock time)."""
    found = match.group(0)
    return _REDACTED if "::" in found or found.count(":") >= 4 else found


def scrub(text: str) -> str:
    """Replace anything that looks like an address or a code."""
    text = _IPV4.sub(_REDACTED, text)
    text = _IPV6.sub(_ipv6, text)
    return _DIGIT_RUN.sub(_REDACTED, text)


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


def install_log_filter() -> None:
    """Attach the scrubber to every handler of the root and gunicorn loggers."""
    for name in ("", "gunicorn.error", "gunicorn.access", "werkzeug", "portal"):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, ScrubFilter) for f in handler.filters):
                handler.addFilter(ScrubFilter())
