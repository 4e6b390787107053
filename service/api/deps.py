"""Dependencies shared by the routes (``SessionDep``, ``StoreDep``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.db.session import Database
from service.evidence import EvidenceStore


def get_session(request: Request) -> Iterator[Session]:
    database: Database = request.app.state.database
    with database.sessions() as session:
        yield session


def get_store(request: Request) -> EvidenceStore:
    store: EvidenceStore = request.app.state.store
    return store


SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[EvidenceStore, Depends(get_store)]
