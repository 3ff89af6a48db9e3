"""The log scrubber: a second line behind "never log it" for addresses and codes."""

from __future__ import annotations

import logging

from portal.common.logs import ScrubFilter, scrub
from portal.protocol import codes


def test_addresses_and_codes_are_scrubbed() -> None:
    code = codes.format_code(codes.generate())
    text = scrub(f"from 203.0.113.9 and 2001:db8::1:2 with {code} or {code.replace(' ', '')}")
    assert "203.0.113.9" not in text and "2001:db8" not in text
    assert code not in text and code.replace(" ", "") not in text
    assert scrub("listening on port 8000, 2 workers") == "listening on port 8000, 2 workers"


def test_the_filter_rewrites_records_before_any_handler_formats_them() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "client %s", ("198.51.100.7",), None)
    assert ScrubFilter().filter(record)
    assert "198.51.100.7" not in record.getMessage()
