"""Reading cases: the queue (filtered to the user's scope) and one case with its history."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from service.api.deps import CurrentUser, ScopeDep, SessionDep
from service.api.routes.events import event_detail
from service.api.routes.filters import FiltersDep, apply_filters
from service.api.schemas import (
    ActionPublic,
    CameraPublic,
    CaseDetail,
    CasePublic,
    NotePublic,
    Page,
    TransitionPublic,
    UserRef,
)
from service.db.models import Attachment, Camera, Case, CaseNote, CaseTransition, EnforcementAction, Event
from service.scope import Scope, case_site
from service.workflow import CAMERA_SOURCE, COMPLAINT_SOURCES, STATES, allowed_steps

router = APIRouter(prefix="/api/cases", tags=["cases"])
CASE_STATES = set(STATES)
SOURCES = (CAMERA_SOURCE, *COMPLAINT_SOURCES)
CASE_DETAIL_OPTIONS = (
    selectinload(Case.camera), selectinload(Case.event).selectinload(Event.files),
    selectinload(Case.linked_event).selectinload(Event.files), selectinload(Case.assignee), selectinload(Case.created_by),
    selectinload(Case.transitions).selectinload(CaseTransition.user),
    selectinload(Case.actions).selectinload(EnforcementAction.officer), selectinload(Case.notes).selectinload(CaseNote.author),
    selectinload(Case.actions).selectinload(EnforcementAction.attachments).selectinload(Attachment.uploaded_by),
    selectinload(Case.notes).selectinload(CaseNote.attachments).selectinload(Attachment.uploaded_by),
)


def load_case(session: Session, scope: Scope, case_id: int) -> Case:
    """The case, or 404 when it does not exist or is outside the user's scope (the same answer, so ids do not leak)."""
    case = session.scalar(select(Case).where(Case.id == case_id).options(*CASE_DETAIL_OPTIONS))
    if case is None or not scope.covers_case(case):
        raise HTTPException(404, f"no case {case_id}")
    return case


def case_public(case: Case) -> CasePublic:
    public = CasePublic.model_validate(case)
    public.site = case_site(case)
    snapshot = next((f for f in case.event.files if f.kind == "snapshot_annotated"), None) if case.event else None
    public.snapshot_url = f"/api/evidence/{snapshot.id}" if snapshot else None
    return public


def case_detail(case: Case) -> CaseDetail:
    return CaseDetail.model_validate(case_public(case).model_dump() | {
        "camera": CameraPublic.model_validate(case.camera) if case.camera else None,
        "event": event_detail(case.event) if case.event else None,
        "linked_event": event_detail(case.linked_event) if case.linked_event else None,
        "description": case.description, "reporter_contact": case.reporter_contact, "dismiss_text": case.dismiss_text,
        "created_by": UserRef.model_validate(case.created_by) if case.created_by else None,
        "allowed_steps": allowed_steps(case),
        "transitions": [TransitionPublic.model_validate(t) for t in case.transitions],
        "actions": [ActionPublic.model_validate(a) for a in case.actions],
        "notes": [NotePublic.model_validate(n) for n in case.notes],
    })


def reload_detail(session: Session, scope: Scope, case_id: int) -> CaseDetail:
    """The case as committed, after a change."""
    session.expire_all()
    return case_detail(load_case(session, scope, case_id))


@router.get("", response_model=Page[CasePublic])
def list_cases(session: SessionDep, filters: FiltersDep, user: CurrentUser, scope: ScopeDep,
               state: Annotated[str | None, Query(description="pending_review, confirmed, dismissed, closed, reopened")] = None,
               source: Annotated[str | None, Query(description="camera, phone, email, in_person")] = None,
               assignee: Annotated[str | None, Query(description="A user id, 'me', or 'none' for unassigned cases")] = None) -> dict:
    if state is not None and state not in CASE_STATES:
        raise HTTPException(422, f"unknown state {state!r}; use one of {sorted(CASE_STATES)}")
    if source is not None and source not in SOURCES:
        raise HTTPException(422, f"unknown source {source!r}; use one of {list(SOURCES)}")
    query = select(Case).outerjoin(Camera, Case.camera_id == Camera.id).where(scope.case_clause())
    query = apply_filters(query, filters, Case.camera_id, func.coalesce(Camera.site, Case.site), Case.opened_at)
    if state:
        query = query.where(Case.state == state)
    if source:
        query = query.where(Case.source == source)
    if assignee is not None:
        if assignee == "none":
            query = query.where(Case.assignee_id.is_(None))
        elif assignee == "me" or assignee.isdigit():
            query = query.where(Case.assignee_id == (user.id if assignee == "me" else int(assignee)))
        else:
            raise HTTPException(422, "assignee must be a user id, 'me' or 'none'")
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(filters.limit).offset(filters.offset)
                           .options(selectinload(Case.camera), selectinload(Case.event).selectinload(Event.files),
                                    selectinload(Case.assignee)))
    return {"total": total, "items": [case_public(case) for case in rows]}


@router.get("/{case_id}", response_model=CaseDetail)
def get_case(case_id: int, session: SessionDep, scope: ScopeDep) -> CaseDetail:
    return case_detail(load_case(session, scope, case_id))
