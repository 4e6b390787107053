from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from service.api.deps import SessionDep
from service.api.routes.events import event_detail
from service.api.routes.filters import FiltersDep
from service.api.schemas import CameraPublic, CaseDetail, CasePublic, Page
from service.db.models import Camera, Case, Event

router = APIRouter(prefix="/api/cases", tags=["cases"])
CASE_STATES = {"pending_review", "confirmed", "dismissed", "closed", "reopened"}


def case_public(case: Case) -> CasePublic:
    public = CasePublic.model_validate(case)
    public.site = case.camera.site if case.camera else None
    snapshot = next((f for f in case.event.files if f.kind == "snapshot_annotated"), None) if case.event else None
    public.snapshot_url = f"/api/evidence/{snapshot.id}" if snapshot else None
    return public


@router.get("", response_model=Page[CasePublic])
def list_cases(session: SessionDep, filters: FiltersDep,
               state: Annotated[str | None, Query(description="pending_review, confirmed, dismissed, closed, reopened")] = None) -> dict:
    if state is not None and state not in CASE_STATES:
        raise HTTPException(422, f"unknown state {state!r}; use one of {sorted(CASE_STATES)}")
    query = select(Case).outerjoin(Camera, Case.camera_id == Camera.id)
    if filters.camera:
        query = query.where(Case.camera_id == filters.camera)
    if filters.site:
        query = query.where(Camera.site == filters.site)
    if filters.since:
        query = query.where(Case.opened_at >= filters.since)
    if filters.until:
        query = query.where(Case.opened_at < filters.until)
    if state:
        query = query.where(Case.state == state)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Case.opened_at.desc()).limit(filters.limit).offset(filters.offset)
                           .options(selectinload(Case.camera), selectinload(Case.event).selectinload(Event.files)))
    return {"total": total, "items": [case_public(case) for case in rows]}


@router.get("/{case_id}", response_model=CaseDetail)
def get_case(case_id: int, session: SessionDep) -> CaseDetail:
    case = session.scalar(select(Case).where(Case.id == case_id)
                          .options(selectinload(Case.camera), selectinload(Case.event).selectinload(Event.files)))
    if case is None:
        raise HTTPException(404, f"no case {case_id}")
    detail = CaseDetail.model_validate(case_public(case).model_dump() | {"camera": None, "event": None})
    detail.camera = CameraPublic.model_validate(case.camera) if case.camera else None
    detail.event = event_detail(case.event) if case.event else None
    return detail



