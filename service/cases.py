"""Writes to the case queue: cameras and their status, events, evidence files, cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import CameraConfig, redact_source
from service.db.models import Camera, CameraStatusChange, Case, Event, EvidenceFile, utcnow
from service.evidence import StoredFile

PENDING_REVIEW = "pending_review"


def sync_cameras(session: Session, cameras: list[CameraConfig]) -> None:
    for config in cameras:
        camera = session.get(Camera, config.id) or Camera(id=config.id)
        camera.name, camera.site, camera.building = config.name or config.id, config.site, config.building
        camera.floor, camera.location_type, camera.source = config.floor, config.location_type, redact_source(config.source)
        session.add(camera)


def record_status(session: Session, camera_id: str, status: str, reason: str, at: datetime | None = None) -> bool:
    """Store a status change; returns False when the camera already had that status."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise KeyError(f"unknown camera {camera_id!r}")
    at = at or utcnow()
    if camera.status == status:
        camera.status_reason = reason
        return False
    camera.status, camera.status_reason, camera.status_since = status, reason, at
    session.add(CameraStatusChange(camera_id=camera_id, status=status, reason=reason, at=at))
    return True


def open_event(session: Session, event: Event) -> Case:
    """Store a confirmed event and open its case for review."""
    session.add(event)
    camera = session.get(Camera, event.camera_id)
    if camera is not None:
        camera.last_event_at = event.confirmed_at
    case = Case(event_id=event.id, camera_id=event.camera_id, state=PENDING_REVIEW, opened_at=event.confirmed_at)
    session.add(case)
    session.flush()
    return case


def add_files(session: Session, event_id: str, files: list[StoredFile]) -> None:
    for stored in files:
        existing = session.scalar(select(EvidenceFile).where(EvidenceFile.event_id == event_id, EvidenceFile.kind == stored.kind))
        row = existing or EvidenceFile(event_id=event_id, kind=stored.kind)
        row.path, row.sha256 = stored.path.as_posix(), stored.sha256
        row.size_bytes, row.content_type = stored.size_bytes, stored.content_type
        session.add(row)


def set_event_status(session: Session, event_id: str, status: str, detail: str = "", ended_at: datetime | None = None,
                     peak_score: float | None = None) -> None:
    event = session.get(Event, event_id)
    if event is None:
        raise KeyError(f"unknown event {event_id!r}")
    event.status, event.status_detail = status, detail
    if ended_at is not None:
        event.ended_at = ended_at
    if peak_score is not None:
        event.peak_score = max(event.peak_score, peak_score)


def unfinished_events(session: Session) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.status == "recording")))

