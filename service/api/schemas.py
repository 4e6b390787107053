"""API schemas, kept apart from the ORM tables."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    total: int
    items: list[T]


class CameraStatusChangePublic(Public):
    status: str
    reason: str
    at: datetime


class CameraPublic(Public):
    id: str
    name: str
    site: str
    building: str
    floor: str
    location_type: str
    status: str
    status_reason: str
    status_since: datetime | None
    last_event_at: datetime | None


class CameraDetail(CameraPublic):
    status_changes: list[CameraStatusChangePublic]


class EvidenceFilePublic(Public):
    id: int
    kind: str
    sha256: str
    size_bytes: int
    content_type: str
    url: str = ""


class EventPublic(Public):
    id: str
    camera_id: str
    track_id: int
    started_at: datetime
    confirmed_at: datetime
    ended_at: datetime | None
    peak_score: float
    status: str
    status_detail: str
    model_version: str


class EventDetail(EventPublic):
    thresholds: dict[str, object]
    files: list[EvidenceFilePublic]


class CasePublic(Public):
    id: int
    state: str
    opened_at: datetime
    updated_at: datetime
    camera_id: str | None
    event_id: str | None
    site: str | None = None
    snapshot_url: str | None = None


class CaseDetail(CasePublic):
    camera: CameraPublic | None
    event: EventDetail | None


class Health(BaseModel):
    status: str  # ok | degraded
    database: str
    storage: str
    cameras_online: int
    cameras_offline: int
