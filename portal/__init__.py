"""The secure reporting portal: the online Flask app (``create_app``)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from . import i18n
from .assets import load_assets
from .blobs import BlobStore
from .branding import load_branding
from .config import Config, load_config
from .db import Database
from .logs import install_log_filter
from .mailboxes import Mailboxes
from .organization import fingerprint
from .staff import StaffAccounts
from .startup import prepare
from .uploads import UploadLimits, Uploads
from .web import api, cases, errors, language, page_context, relay, reporter, security
from .web.json_provider import SafeJSONProvider
from .web.requests import PortalRequest
from .web.services import Services
from .web.work_gate import WorkGate

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["create_app"]


def create_app(config: Config | None = None) -> Flask:
    """Build the portal for ``config`` (default: from the environment)."""
    config = config or load_config()
    org, secret_key = prepare(config)
    install_log_filter()

    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
    )
    app.request_class = PortalRequest
    app.json = SafeJSONProvider(app)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.tls,
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        # Text fields of a multipart form; file parts are limited per endpoint.
        MAX_FORM_MEMORY_SIZE=config.max_request_bytes,
        WTF_CSRF_TIME_LIMIT=4 * 3600,
        # Referrer-Policy: no-referrer means browsers send no Referer to check.
        WTF_CSRF_SSL_STRICT=False,
        TEMPLATES_AUTO_RELOAD=False,
    )
    db = Database(config.database_url)
    mailboxes = Mailboxes(db, BlobStore(config.blob_dir))
    limits = UploadLimits(
        max_file_bytes=config.max_file_bytes,
        max_files=config.max_files,
        max_total_bytes=config.max_report_bytes,
        quota_bytes=config.upload_quota_bytes,
    )
    app.extensions["portal"] = Services(
        config=config,
        organization=org,
        db=db,
        mailboxes=mailboxes,
        assets=load_assets(ROOT / "static"),
        staff=StaffAccounts(db, secret_key),
        uploads=Uploads(db, mailboxes.blobs, limits, mailboxes.today),
        work_gate=WorkGate(
            config.data_dir / "work-slots",
            slots=config.argon2_slots,
            rate=config.argon2_rate,
            burst=config.argon2_rate * 2,
        ),
        branding=load_branding(config.branding_dir),
    )
    CSRFProtect(app)
    app.jinja_env.add_extension("jinja2.ext.do")
    i18n.install(app)
    app.jinja_env.globals.update(
        organization=org,
        fingerprint=fingerprint(org.encrypt[0].kid),
        quick_exit_url=config.quick_exit_url,
        assets=app.extensions["portal"].assets,
        limits=config,
    )
    app.register_blueprint(reporter.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(language.bp)
    app.register_blueprint(page_context.bp)
    app.register_blueprint(relay.bp)
    relay.restrict_hosts(app, config.staff_host)
    security.install(app, tls=config.tls, onion_address=config.onion_address)
    security.serve_precompressed(app)
    errors.install(app)

    @app.teardown_request
    def _discard_unkept_uploads(_exc: BaseException | None) -> None:
        from flask import request

        if isinstance(request, PortalRequest):
            request.discard_unkept_uploads()

    return app
