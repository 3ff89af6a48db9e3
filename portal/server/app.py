"""The secure reporting portal: the public app (``create_app``) and the relay
app (``create_relay_app``), each served by its own gunicorn on its own listener."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from portal.common import headers as security
from portal.common import i18n
from portal.common.assets import load_assets
from portal.common.blobs import BlobStore
from portal.common.db import Database
from portal.common.json_provider import SafeJSONProvider
from portal.common.logs import install_log_filter
from portal.common.questionnaire import load_folder
from portal.protocol.organization import fingerprint
from portal.server import questionnaires
from portal.server.branding import load_branding
from portal.server.config import Config, load_config
from portal.server.mailboxes import Mailboxes
from portal.server.spent import SpentTokens
from portal.server.staff import StaffAccounts
from portal.server.startup import prepare
from portal.server.uploads import UploadLimits, Uploads
from portal.server.web import api, cases, errors, language, page_context, relay, reporter, sessions
from portal.server.web.requests import PortalRequest
from portal.server.web.services import Services
from portal.server.web.work import Load
from portal.server.web.work_gate import WorkGate, slots_for

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["create_app", "create_relay_app"]


def _base_app(config: Config, cookie_name: str, error_template: str) -> Flask:
    """What both apps share: configuration, storage, sessions, headers, errors."""
    org, keys = prepare(config)
    install_log_filter()

    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
    )
    app.request_class = PortalRequest
    app.json = SafeJSONProvider(app)
    app.config.update(
        SECRET_KEY=keys.csrf,
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        # Text fields of a multipart form; file parts are limited per endpoint.
        MAX_FORM_MEMORY_SIZE=config.max_request_bytes,
        WTF_CSRF_TIME_LIMIT=config.session_lifetime_seconds,
        # Referrer-Policy: no-referrer means browsers send no Referer to check.
        WTF_CSRF_SSL_STRICT=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    db = Database(config.database_url)
    mailboxes = Mailboxes(db, BlobStore(config.blob_dir), pending_per_case=config.pending_per_case)
    limits = UploadLimits(
        max_file_bytes=config.max_file_bytes,
        max_files=config.max_files,
        max_total_bytes=config.max_report_bytes,
        quota_bytes=config.upload_quota_bytes,
    )
    sessions.install(
        app,
        sessions.SessionStore(db),
        cookie_name,
        lifetime=config.session_lifetime_seconds,
        secure=config.tls,
    )
    served = load_folder(config.questionnaires_dir)
    questionnaires.record(db, served, mailboxes.today())
    app.extensions["portal"] = Services(
        config=config,
        organization=org,
        db=db,
        mailboxes=mailboxes,
        assets=load_assets(ROOT / "static"),
        staff=StaffAccounts(db, keys.totp),
        uploads=Uploads(db, mailboxes.blobs, limits, mailboxes.today),
        work_gate=WorkGate(
            slots_for(db.engine, config.data_dir / "work-slots", config.derive_slots),
            rate=config.derive_rate,
            burst=config.derive_rate * 2,
        ),
        branding=load_branding(config.branding_dir),
        pow_load=Load(),
        pow_key=keys.pow,
        spent=SpentTokens(db),
        questionnaires=served,
    )
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.globals.update(
        organization=org,
        fingerprint=fingerprint(org.encrypt[0].kid),
        quick_exit_url=config.quick_exit_url,
        assets=app.extensions["portal"].assets,
        limits=config,
    )
    security.install(app, tls=config.tls, onion_address=config.onion_address)
    security.serve_precompressed(app)
    errors.install(app, error_template)
    return app


def create_app(config: Config | None = None) -> Flask:
    """The public portal for ``config`` (default: from the environment).

    It serves reporters only: the relay's pages do not exist here, whatever
    the Host header says (they are ``create_relay_app``'s).
    """
    app = _base_app(config or load_config(), "portal_session", "error.html")
    CSRFProtect(app)
    i18n.install(app)
    app.register_blueprint(reporter.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(language.bp)
    app.register_blueprint(page_context.bp)

    @app.teardown_request
    def _discard_unkept_uploads(_exc: BaseException | None) -> None:
        from flask import request

        if isinstance(request, PortalRequest):
            request.discard_unkept_uploads()

    return app


def create_relay_app(config: Config | None = None) -> Flask:
    """The relay staff's app, at /staff/, for a listener of its own that only
    staff can reach (never the public one)."""
    app = _base_app(config or load_config(), "relay_session", "relay/error.html")
    relay.install(app)  # its login check runs before CSRF reads any body
    CSRFProtect(app)
    i18n.install(app)
    app.register_blueprint(relay.bp)
    return app
