"""ORM models. API schemas live in service.api.schemas; these are the tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    site: Mapped[str] = mapped_column(String(200), default="default", index=True)
    building: Mapped[str] = mapped_column(String(200), default="")
    floor: Mapped[str] = mapped_column(String(50), default="")
    location_type: Mapped[str] = mapped_column(String(40), default="other")
    source: Mapped[str] = mapped_column(Text, default="")  # credentials removed
    status: Mapped[str] = mapped_column(String(20), default="unknown")  # online | offline | ended | unknown
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    status_changes: Mapped[list[CameraStatusChange]] = relationship(back_populates="camera", order_by="CameraStatusChange.id")


class CameraStatusChange(Base):
    __tablename__ = "camera_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    camera: Mapped[Camera] = relationship(back_populates="status_changes")


class Event(Base):
    """One confirmed smoking episode of one person on one camera."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"), index=True)
    track_id: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    peak_score: Mapped[float] = mapped_column(Float)
    # recording → complete; incomplete (clip cut short: crash, camera lost); evidence_failed (storage error)
    status: Mapped[str] = mapped_column(String(20), default="recording", index=True)
    status_detail: Mapped[str] = mapped_column(Text, default="")
    evidence_dir: Mapped[str] = mapped_column(Text)  # relative to the evidence root
    model_version: Mapped[str] = mapped_column(String(200))
    thresholds: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    camera: Mapped[Camera] = relationship()
    files: Mapped[list[EvidenceFile]] = relationship(back_populates="event", order_by="EvidenceFile.id")
    case: Mapped[Case | None] = relationship(back_populates="event")


class EvidenceFile(Base):
    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # clip | clip_master | snapshot | snapshot_annotated | manifest
    path: Mapped[str] = mapped_column(Text)  # relative to the evidence root
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship(back_populates="files")


class Case(Base):
    """What an inspector reviews; each confirmed event opens one in ``pending_review``."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"), unique=True, nullable=True)
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id"), index=True, nullable=True)
    state: Mapped[str] = mapped_column(String(30), default="pending_review", index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    event: Mapped[Event | None] = relationship(back_populates="case")
    camera: Mapped[Camera | None] = relationship()
