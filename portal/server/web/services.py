"""The portal's services, attached to the app and reached from a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from portal.common.assets import Asset
from portal.common.db import Database
from portal.common.questionnaire import Questionnaire
from portal.protocol.organization import Organization
from portal.server.branding import Branding
from portal.server.config import Config
from portal.server.mailboxes import Mailboxes
from portal.server.spent import SpentTokens
from portal.server.staff import StaffAccounts
from portal.server.uploads import Uploads
from portal.server.web.work_gate import WorkGate

if TYPE_CHECKING:
    from portal.server.web.work import Load


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
    questionnaires: tuple[Questionnaire, ...]


def services() -> Services:
    svc: Services = current_app.extensions["portal"]
    return svc
