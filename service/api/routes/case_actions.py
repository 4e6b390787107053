"""The case workflow over HTTP: confirm, dismiss (one or many), enforcement actions, close, reopen, assign, notes.

Invalid steps answer 409 with the steps allowed from the case's state; cases outside the user's
scope answer 404, like cases that do not exist.
"""

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service import workflow
from service.api.deps import AuditorDep, InspectorUser, ScopeDep, SessionDep, SupervisorUser
from service.api.routes.cases import load_case, reload_detail
from service.api.schemas import (
    ActionCreate,
    AssignRequest,
    BulkDismissed,
    BulkDismissRequest,
    CaseDetail,
    CloseRequest,
    ConfirmRequest,
    DismissRequest,
    NoteCreate,
    ReopenRequest,
    UserRef,
)
from service.db.models import Case, User
from service.scope import Scope

router = APIRouter(prefix="/api/cases", tags=["case workflow"])
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Not allowed from the case's current state; the message lists what is"}}


def _apply(change: Callable[[], object]) -> None:
    try:
        change()
    except workflow.WorkflowConflict as error:
        raise HTTPException(409, str(error)) from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@router.post("/bulk-dismiss", response_model=BulkDismissed, responses=CONFLICT)
def bulk_dismiss(body: BulkDismissRequest, session: SessionDep, user: InspectorUser, scope: ScopeDep, auditor: AuditorDep) -> BulkDismissed:
    """Dismiss several cases with one reason: all of them, or (404/409, listing the culprits) none."""
    ids = list(dict.fromkeys(body.case_ids))
    found = {case.id: case for case in session.scalars(select(Case).where(Case.id.in_(ids)).options(selectinload(Case.camera)))
             if scope.covers_case(case)}
    missing = [case_id for case_id in ids if case_id not in found]
    if missing:
        raise HTTPException(404, f"no case {', '.join(map(str, missing))}; nothing was dismissed")
    stuck = [found[case_id] for case_id in ids if "dismiss" not in workflow.STEPS.get(found[case_id].state, {})]
    if stuck:
        listed = ", ".join(f"case {case.id} ({case.state})" for case in stuck)
        raise HTTPException(409, f"cannot dismiss {listed}: only pending_review or reopened cases can be; nothing was dismissed")
    for case_id in ids:
        _apply(partial(workflow.dismiss, auditor, found[case_id], body.reason, body.text, bulk=True))
    session.commit()
    return BulkDismissed(dismissed=ids)


def _change(session: Session, scope: Scope, case_id: int, change: Callable[[Case], object]) -> CaseDetail:
    """Load a case within scope, apply one workflow step (409 when the state forbids it), commit, return it."""
    case = load_case(session, scope, case_id)
    _apply(lambda: change(case))
    session.commit()
    return reload_detail(session, scope, case_id)


@router.post("/{case_id}/confirm", response_model=CaseDetail, responses=CONFLICT)
def confirm_case(case_id: int, session: SessionDep, user: InspectorUser, scope: ScopeDep, auditor: AuditorDep,
                 body: Annotated[ConfirmRequest | None, Body()] = None) -> CaseDetail:
    """It is smoking in a no-smoking area: from pending_review or reopened to confirmed."""
    return _change(session, scope, case_id, lambda case: workflow.confirm(auditor, case, body.note if body else ""))


@router.post("/{case_id}/dismiss", response_model=CaseDetail, responses=CONFLICT)
def dismiss_case(case_id: int, body: DismissRequest, session: SessionDep, user: InspectorUser, scope: ScopeDep,
                 auditor: AuditorDep) -> CaseDetail:
    """Not a violation: from pending_review or reopened to dismissed, with a reason ('other' needs a text)."""
    return _change(session, scope, case_id, lambda case: workflow.dismiss(auditor, case, body.reason, body.text))


@router.post("/{case_id}/actions", response_model=CaseDetail, status_code=201, responses=CONFLICT)
def record_action(case_id: int, body: ActionCreate, session: SessionDep, user: InspectorUser, scope: ScopeDep,
                  auditor: AuditorDep) -> CaseDetail:
    """Record what was done about a confirmed case (by the signed-in user)."""
    return _change(session, scope, case_id, lambda case: workflow.record_action(
        auditor, case, body.kind, body.at, body.notes, body.person_count, body.venue_name))


@router.post("/{case_id}/close", response_model=CaseDetail, responses=CONFLICT)
def close_case(case_id: int, session: SessionDep, user: InspectorUser, scope: ScopeDep, auditor: AuditorDep,
               body: Annotated[CloseRequest | None, Body()] = None) -> CaseDetail:
    """Close a confirmed case once at least one enforcement action is recorded."""
    return _change(session, scope, case_id, lambda case: workflow.close(auditor, case, body.note if body else ""))


@router.post("/{case_id}/reopen", response_model=CaseDetail, responses=CONFLICT)
def reopen_case(case_id: int, body: ReopenRequest, session: SessionDep, user: InspectorUser, scope: ScopeDep,
                auditor: AuditorDep) -> CaseDetail:
    """Reopen a closed or dismissed case, saying why; it then needs confirming or dismissing again."""
    return _change(session, scope, case_id, lambda case: workflow.reopen(auditor, case, body.reason))


@router.post("/{case_id}/notes", response_model=CaseDetail, status_code=201)
def add_note(case_id: int, body: NoteCreate, session: SessionDep, user: InspectorUser, scope: ScopeDep, auditor: AuditorDep) -> CaseDetail:
    """Append a note; notes are never edited or deleted."""
    return _change(session, scope, case_id, lambda case: workflow.add_note(auditor, case, body.text))


def _officers_for(session: SessionDep, case: Case) -> list[User]:
    candidates = session.scalars(select(User).where(User.active.is_(True), User.role.in_(("inspector", "supervisor", "admin")))
                                 .order_by(User.username))
    return [officer for officer in candidates if Scope.of(officer).covers_case(case)]


@router.get("/{case_id}/assignable", response_model=list[UserRef])
def assignable_officers(case_id: int, session: SessionDep, user: SupervisorUser, scope: ScopeDep) -> list[User]:
    """The officers the case can be assigned to: active inspectors and above whose scope covers it."""
    return _officers_for(session, load_case(session, scope, case_id))


@router.post("/{case_id}/assign", response_model=CaseDetail, responses=CONFLICT)
def assign_case(case_id: int, body: AssignRequest, session: SessionDep, user: SupervisorUser, scope: ScopeDep,
                auditor: AuditorDep) -> CaseDetail:
    """Assign the case to an officer, or unassign it with ``user_id: null``."""
    case = load_case(session, scope, case_id)
    assignee = None
    if body.user_id is not None:
        assignee = session.get(User, body.user_id)
        if assignee is None:
            raise HTTPException(404, f"no user {body.user_id}")
    _apply(lambda: workflow.assign(auditor, case, assignee))
    session.commit()
    return reload_detail(session, scope, case_id)
