"""The portal's services, attached to the app and reached from a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from ..assets import Asset
from ..branding import Branding
from ..config import Config
from ..db import Database
from ..mailboxes import Mailboxes
from ..organization import Organization
from ..spent import SpentTokens
from ..staff import StaffAccounts
from ..uploads import Uploads
from .work_gate import WorkGate

if TYPE_CHECKING:
    from .work import Load


@dataclass(frozen=True)
class Services:
    config: Config
    organization: Organization
    db: Database
    mailboxes: Mailboxes
    assets: dict[str, Asset]
    staff: StaffAccounts
    uploads: Uploads
    work_gate: WorkGate
    branding: Branding
    pow_load: Load
    pow_key: bytes
    spent: SpentTokens


def services() -> Services:
    svc: Services = current_app.extensions["portal"]
    return svc
