"""What every reporter page shows around its content: who runs the portal, in
the reader's language, and whether the reader came the safest way."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, abort, request, url_for
from markupsafe import Markup

from .. import i18n
from .services import services

bp = Blueprint("page_context", __name__)


@dataclass(frozen=True)
class OrganizationText:
    """A text from the branding folder and the language it is really written in."""

    html: str | Markup
    language: str


def _text(kind: str) -> OrganizationText | None:
    """The branding folder's ``kind`` ("name", "welcome", "guidance") for this reader."""
    found = getattr(services().branding, kind).get(i18n.current().code)
    return OrganizationText(*found) if found else None


def organization_name() -> OrganizationText:
    """The folder's name for the organization, else the one in its key file."""
    return _text("name") or OrganizationText(services().organization.name, "")


def logo() -> dict[str, str] | None:
    found = services().branding.logo
    if found is None:
        return None
    alt = found.alt.get(i18n.current().code) or found.alt.get("en") or ""
    return {"url": url_for("page_context.logo_image", digest=found.digest), "alt": alt}


def onion_notice() -> str | None:
    """The onion address to recommend, when configured and the reader is elsewhere."""
    config = services().config
    if not (config.onion_notice and config.onion_address):
        return None
    host = (request.host or "").rsplit(":", 1)[0].lower()
    return None if host == config.onion_address.lower() else config.onion_address


@bp.app_context_processor
def _page_context() -> dict[str, object]:
    return {
        "org_name": organization_name,
        "org_logo": logo,
        "org_text": _text,
        "onion_notice": onion_notice,
        "onion_address": services().config.onion_address,
    }


@bp.get("/organization/logo/<digest>")
def logo_image(digest: str) -> Response:
    found = services().branding.logo
    if found is None or digest != found.digest:
        abort(404)
    # Like every non-build response it is sent no-store: a cached logo is a trace.
    return Response(found.data, mimetype=found.mimetype)
