"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from service.api.routes import cameras, cases, events, evidence, health
from service.db.session import Database
from service.evidence import EvidenceStore
from service.metrics import Metrics


def create_app(database: Database, store: EvidenceStore, metrics: Metrics | None = None) -> FastAPI:
    app = FastAPI(title="Smokewatch", version="0.1.0",
                  description="Smoking events caught on no-smoking-area cameras, their evidence, and the case queue.")
    app.state.database, app.state.store = database, store
    app.state.metrics = metrics or Metrics(storage_bytes=store.used_bytes)
    for module in (cases, events, evidence, cameras, health):
        app.include_router(module.router)
    return app
