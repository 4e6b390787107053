"""Reading events (within the user's scope)."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from service.api.deps import ScopeDep, SessionDep
from service.api.routes.filters import FiltersDep, apply_filters
from service.api.schemas import EventDetail, EventPublic, EvidenceFilePublic, Page
from service.db.models import Camera, Event
from service.scope import Scope

router = APIRouter(prefix="/api/events", tags=["events"])


def event_detail(event: Event) -> EventDetail:
    detail = EventDetail.model_validate(event)
    detail.files = [EvidenceFilePublic.model_validate(f).model_copy(update={"url": f"/api/evidence/{f.id}"}) for f in event.files]
    return detail


def load_event(session: Session, scope: Scope, event_id: str) -> Event:
    """The event, or 404 when it does not exist or its camera is outside the user's scope."""
    event = session.scalar(select(Event).where(Event.id == event_id).options(selectinload(Event.files), selectinload(Event.camera)))
    if event is None or not scope.covers_camera(event.camera):
        raise HTTPException(404, f"no event {event_id!r}")
    return event


@router.get("", response_model=Page[EventPublic])
def list_events(session: SessionDep, filters: FiltersDep, scope: ScopeDep,
                status: Annotated[str | None, Query(description="recording, complete, incomplete, evidence_failed")] = None) -> dict:
    query = select(Event).join(Camera).where(scope.camera_clause())
    query = apply_filters(query, filters, Event.camera_id, Camera.site, Event.started_at)
    if status:
        query = query.where(Event.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(Event.started_at.desc()).limit(filters.limit).offset(filters.offset))
    return {"total": total, "items": list(items)}


@router.get("/{event_id}", response_model=EventDetail)
def get_event(event_id: str, session: SessionDep, scope: ScopeDep) -> EventDetail:
    return event_detail(load_event(session, scope, event_id))
