"""The inspectors' case workflow: review, enforcement, closing, reopening, assignment, notes and complaints.

Every function changes the case and records its audit entry in the same session; the caller
commits. Who may call what (roles, scope) is checked by the API before these run.

    pending_review ──confirm──▶ confirmed ──(actions)──close──▶ closed ──reopen──▶ reopened
          │                                                                     │
          └──dismiss──▶ dismissed ──reopen──▶ reopened ──confirm / dismiss──────┘
"""

from __future__ import annotations

from datetime import datetime

from service.accounts import at_least
from service.audit import Auditor
from service.db.models import Camera, Case, CaseNote, CaseTransition, EnforcementAction, Event, User, utcnow
from service.scope import Scope, case_site

PENDING_REVIEW, CONFIRMED, DISMISSED, CLOSED, REOPENED = "pending_review", "confirmed", "dismissed", "closed", "reopened"
STATES = (PENDING_REVIEW, CONFIRMED, DISMISSED, CLOSED, REOPENED)
# state -> step -> state after it; "record_action" keeps the case confirmed
STEPS: dict[str, dict[str, str]] = {
    PENDING_REVIEW: {"confirm": CONFIRMED, "dismiss": DISMISSED},
    CONFIRMED: {"record_action": CONFIRMED, "close": CLOSED},
    CLOSED: {"reopen": REOPENED},
    DISMISSED: {"reopen": REOPENED},
    REOPENED: {"confirm": CONFIRMED, "dismiss": DISMISSED},
}
DISMISS_REASONS = ("not_smoking", "designated_smoking_area", "test", "duplicate", "other")
ACTION_KINDS = ("dissuaded_on_site", "ordered_to_rectify", "penalty_referred")
COMPLAINT_SOURCES = ("phone", "email", "in_person")
CAMERA_SOURCE = "camera"


class WorkflowConflict(Exception):
    """The step does not fit the case as it is now (HTTP 409); the message says what is allowed."""


def allowed_steps(case: Case) -> list[str]:
    return list(STEPS.get(case.state, {}))


def _check(case: Case, step: str) -> str:
    """The state ``step`` leads to from the case's state, or WorkflowConflict naming the allowed steps."""
    allowed = STEPS.get(case.state, {})
    if step not in allowed:
        choices = ", ".join(allowed) or "nothing"
        raise WorkflowConflict(f"case {case.id} is {case.state}: cannot {step.replace('_', ' ')}; allowed from {case.state}: {choices}")
    return allowed[step]


def _step(auditor: Auditor, case: Case, step: str, reason: str = "", note: str = "", **details: object) -> CaseTransition:
    to_state = _check(case, step)
    assert auditor.user is not None
    transition = CaseTransition(from_state=case.state, to_state=to_state, user=auditor.user, at=utcnow(), reason=reason, note=note)
    case.transitions.append(transition)
    case.state, case.updated_at = to_state, transition.at
    auditor.record(f"case_{to_state}", "case", case.id, from_state=transition.from_state, to_state=to_state, reason=reason, note=note,
                   **details)
    return transition


def confirm(auditor: Auditor, case: Case, note: str = "") -> None:
    _step(auditor, case, "confirm", note=note)
    case.dismiss_reason, case.dismiss_text = None, ""


def dismiss(auditor: Auditor, case: Case, reason: str, text: str = "", bulk: bool = False) -> None:
    if reason not in DISMISS_REASONS:
        raise ValueError(f"unknown dismiss reason {reason!r}; use one of {', '.join(DISMISS_REASONS)}")
    if reason == "other" and not text.strip():
        raise ValueError("dismiss reason 'other' needs a text saying why")
    _step(auditor, case, "dismiss", reason=reason, note=text, **({"bulk": True} if bulk else {}))
    case.dismiss_reason, case.dismiss_text = reason, text


def record_action(auditor: Auditor, case: Case, kind: str, at: datetime | None = None, notes: str = "", person_count: int | None = None,
                  venue_name: str | None = None) -> EnforcementAction:
    if kind not in ACTION_KINDS:
        raise ValueError(f"unknown action {kind!r}; use one of {', '.join(ACTION_KINDS)}")
    _check(case, "record_action")
    assert auditor.user is not None
    action = EnforcementAction(kind=kind, officer=auditor.user, at=at or utcnow(), notes=notes, person_count=person_count,
                               venue_name=venue_name, recorded_at=utcnow())
    case.actions.append(action)
    auditor.session.flush()
    case.updated_at = action.recorded_at  # bumps the case version, so a concurrent close or reopen conflicts
    auditor.record("case_action_recorded", "case", case.id, action_id=action.id, kind=kind, at=action.at, notes=notes,
                   person_count=person_count, venue_name=venue_name)
    return action


def close(auditor: Auditor, case: Case, note: str = "") -> None:
    if case.state == CONFIRMED and not case.actions:
        raise WorkflowConflict(f"case {case.id} has no enforcement action yet; record one "
                               f"({', '.join(ACTION_KINDS)}) before closing it")
    _step(auditor, case, "close", note=note)


def reopen(auditor: Auditor, case: Case, reason: str) -> None:
    if not reason.strip():
        raise ValueError("reopening needs a reason")
    _step(auditor, case, "reopen", note=reason)


def assign(auditor: Auditor, case: Case, assignee: User | None) -> None:
    """Give the case to an officer (inspector or above whose scope covers it), or take it back with None."""
    if assignee is not None:
        if not assignee.active:
            raise WorkflowConflict(f"user {assignee.username!r} is deactivated")
        if not at_least(assignee, "inspector"):
            raise WorkflowConflict(f"user {assignee.username!r} is a {assignee.role}; cases go to an inspector, supervisor or admin")
        if not Scope.of(assignee).covers_case(case):
            raise WorkflowConflict(f"case {case.id} is outside the scope of user {assignee.username!r}")
    previous = case.assignee.username if case.assignee else None
    case.assignee = assignee
    case.updated_at = utcnow()
    if assignee is None:
        auditor.record("case_unassigned", "case", case.id, previous=previous)
    else:
        auditor.record("case_assigned", "case", case.id, assignee_id=assignee.id, assignee=assignee.username, previous=previous)


def add_note(auditor: Auditor, case: Case, text: str) -> CaseNote:
    if not text.strip():
        raise ValueError("a note needs some text")
    assert auditor.user is not None
    note = CaseNote(author=auditor.user, at=utcnow(), text=text)
    case.notes.append(note)
    auditor.session.flush()
    auditor.record("case_note_added", "case", case.id, note_id=note.id, text=text)
    return note


def open_complaint(auditor: Auditor, source: str, description: str, site: str, camera: Camera | None, occurred_at: datetime,
                   reporter_contact: str = "") -> Case:
    """A case opened by hand from a report (举报), with no clip until an event is linked."""
    if source not in COMPLAINT_SOURCES:
        raise ValueError(f"unknown complaint source {source!r}; use one of {', '.join(COMPLAINT_SOURCES)}")
    if camera is not None and camera.site != site:
        raise ValueError(f"camera {camera.id!r} is at site {camera.site!r}, not {site!r}")
    now = utcnow()
    case = Case(source=source, description=description, reporter_contact=reporter_contact, site=site,
                camera_id=camera.id if camera else None, occurred_at=occurred_at, state=PENDING_REVIEW, opened_at=now, updated_at=now,
                created_by=auditor.user)
    case.camera = camera
    auditor.session.add(case)
    auditor.session.flush()
    auditor.record("complaint_opened", "case", case.id, source=source, site=site, camera_id=case.camera_id, occurred_at=occurred_at)
    return case


def link_event(auditor: Auditor, case: Case, event: Event) -> None:
    """Attach the footage of an event to a complaint."""
    if case.source == CAMERA_SOURCE:
        raise WorkflowConflict(f"case {case.id} came from a camera; only complaints are linked to events")
    if event.camera.site != case_site(case):
        raise WorkflowConflict(f"event {event.id!r} is at site {event.camera.site!r}, but case {case.id} is at {case_site(case)!r}")
    previous = case.linked_event_id
    case.linked_event = event
    case.updated_at = utcnow()
    auditor.record("complaint_linked", "case", case.id, event_id=event.id, previous=previous)
