"""Complaints (举报): cases opened by hand from a phone call, email or visit, later linked to camera footage."""

from fastapi import APIRouter, HTTPException

from service import workflow
from service.api.deps import AuditorDep, InspectorUser, ScopeDep, SessionDep
from service.api.routes.case_actions import CONFLICT
from service.api.routes.cases import load_case, reload_detail
from service.api.routes.events import load_event
from service.api.schemas import CaseDetail, ComplaintCreate, LinkEventRequest
from service.db.models import Camera

router = APIRouter(tags=["complaints"])


@router.post("/api/complaints", response_model=CaseDetail, status_code=201)
def open_complaint(body: ComplaintCreate, session: SessionDep, user: InspectorUser, scope: ScopeDep, auditor: AuditorDep) -> CaseDetail:
    """Open a case in pending_review from a report; the site defaults to the camera's."""
    camera = None
    if body.camera_id is not None:
        camera = session.get(Camera, body.camera_id)
        if camera is None or not scope.covers_camera(camera):
            raise HTTPException(404, f"no camera {body.camera_id!r}")
    if camera is not None and body.site is not None and body.site != camera.site:
        raise HTTPException(422, f"camera {camera.id!r} is at site {camera.site!r}, not {body.site!r}")
    site = body.site or (camera.site if camera else "")
    if not scope.covers(site, camera.id if camera else None):
        raise HTTPException(403, f"site {site!r} is outside your scope")
    try:
        case = workflow.open_complaint(auditor, body.source, body.description, site, camera, body.occurred_at, body.reporter_contact)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    session.commit()
    return reload_detail(session, scope, case.id)


@router.post("/api/cases/{case_id}/link-event", response_model=CaseDetail, responses=CONFLICT)
def link_event(case_id: int, body: LinkEventRequest, session: SessionDep, user: InspectorUser, scope: ScopeDep,
               auditor: AuditorDep) -> CaseDetail:
    """Attach the footage of an event (same site) to a complaint."""
    case = load_case(session, scope, case_id)
    event = load_event(session, scope, body.event_id)
    try:
        workflow.link_event(auditor, case, event)
    except workflow.WorkflowConflict as error:
        raise HTTPException(409, str(error)) from None
    session.commit()
    return reload_detail(session, scope, case_id)
