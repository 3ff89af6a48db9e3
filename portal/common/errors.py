"""The one base of every refusal in the portal, the desk and the protocol.

Each failure has a stable ``reason`` code. The web layer alone turns a reason
into an HTTP status (``portal.server.web.errors.STATUS``) and into the
reporter's words; the English ``detail`` is for logs, tests and staff, never
shown to a reporter. No domain error carries an HTTP status.
"""

from __future__ import annotations

from typing import ClassVar


class PortalError(Exception):
    """A refusal: ``reason`` says which, ``detail`` says why, in English."""

    def __init__(self, reason: str, detail: str = "", **extra: object) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason
        self.extra = extra  # facts the caller may answer with (e.g. the next part to send)


class NamedError(PortalError):
    """A failure that is one thing: its class names it, its ``REASON`` codes it."""

    REASON: ClassVar[str] = "refused"

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.REASON, detail)
