"""The FastAPI application."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm.exc import StaleDataError
from starlette.types import Scope

from service.alerts import AlertDispatcher
from service.api.body_limit import BodySizeLimit
from service.api.deps import AuthSettings
from service.api.routes import alerts as alerts_routes
from service.api.routes import (
    attachments,
    audit,
    auth,
    cameras,
    case_actions,
    case_export,
    cases,
    complaints,
    events,
    evidence,
    health,
    statistics,
    tokens,
    users,
)
from service.attachments import size_limit_text
from service.config import AppConfig
from service.db.session import Database
from service.evidence import EvidenceStore
from service.evidence_integrity import VerifiedHashes
from service.metrics import Metrics
from service.web import routes as web_routes


def create_app(database: Database, store: EvidenceStore, metrics: Metrics | None = None,
               auth_settings: AuthSettings | None = None, config: AppConfig | None = None,
               alerts: AlertDispatcher | None = None) -> FastAPI:
    """``config`` supplies the statistics and alert settings (defaults without it); ``alerts`` is woken on a manual retry."""
    app = FastAPI(title="Smokewatch", version="0.1.0",
                  description="Smoking events caught on no-smoking-area cameras, their evidence, and the inspectors' case workflow. "
                              "Sign in with POST /api/auth/login (session cookie + CSRF token) or send an API token as "
                              "`Authorization: Bearer ...`.")
    app.state.database, app.state.store = database, store
    app.state.metrics = metrics or Metrics(storage_bytes=store.used_bytes)
    app.state.auth = auth_settings or AuthSettings()
    app.state.verified_hashes = VerifiedHashes()
    app.state.config = config or AppConfig()
    app.state.alerts = alerts
    app.add_middleware(BodySizeLimit, larger=_attachment_limit)
    app.add_exception_handler(StaleDataError, _changed_meanwhile)
    # case_actions before cases: its fixed paths (/api/cases/bulk-dismiss) must win over /api/cases/{case_id}
    for module in (auth, users, tokens, case_actions, complaints, cases, case_export, attachments, events, evidence, cameras, audit,
                   alerts_routes, statistics, health):
        app.include_router(module.router)
    app.include_router(web_routes.router)
    web_routes.mount_static(app)
    return app


UPLOAD_PATH = re.compile(r"/api/cases/\d+/attachments")
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the other form fields


def _attachment_limit(scope: Scope) -> tuple[int, str] | None:
    """Attachment uploads may be as large as storage.max_attachment_mb (read from the app's config, so it can change)."""
    if scope.get("method") != "POST" or not UPLOAD_PATH.fullmatch(scope.get("path", "")):
        return None
    config: AppConfig = scope["app"].state.config
    max_bytes = attachments.max_attachment_bytes(config.storage.max_attachment_mb)
    return max_bytes + MULTIPART_OVERHEAD, f"the file is too large: attachments may be at most {size_limit_text(max_bytes)}"


async def _changed_meanwhile(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the case was changed by someone else meanwhile; reload it and try again"}, status_code=409)
