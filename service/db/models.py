"""ORM models. API schemas live in service.api.schemas; these are the tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
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
    case: Mapped[Case | None] = relationship(back_populates="event", foreign_keys="Case.event_id")


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

    # Complaints (举报) are cases opened by hand: source phone | email | in_person; camera cases have source "camera".
    source: Mapped[str] = mapped_column(String(20), default="camera", server_default="camera", index=True)
    site: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)  # set on complaints; camera cases use the camera's
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    reporter_contact: Mapped[str] = mapped_column(String(200), default="", server_default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # when the reported smoking happened
    # Footage found later for a complaint; not event_id, which is unique to the event's own case.
    linked_event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", name="fk_cases_linked_event_id_events"), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_cases_created_by_id_users"), nullable=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", name="fk_cases_assignee_id_users"), nullable=True, index=True)
    dismiss_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)
    dismiss_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Optimistic locking: two reviewers acting on the same case at once cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    event: Mapped[Event | None] = relationship(back_populates="case", foreign_keys=[event_id])
    camera: Mapped[Camera | None] = relationship()
    linked_event: Mapped[Event | None] = relationship(foreign_keys=[linked_event_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    transitions: Mapped[list[CaseTransition]] = relationship(order_by="CaseTransition.id", back_populates="case")
    actions: Mapped[list[EnforcementAction]] = relationship(order_by="EnforcementAction.id", back_populates="case")
    notes: Mapped[list[CaseNote]] = relationship(order_by="CaseNote.id", back_populates="case")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id", viewonly=True)

    __mapper_args__ = {"version_id_col": version}


class CaseTransition(Base):
    """One change of a case's state, with who made it and why."""

    __tablename__ = "case_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(30), default="")  # dismiss reason
    note: Mapped[str] = mapped_column(Text, default="")

    case: Mapped[Case] = relationship(back_populates="transitions")
    user: Mapped[User] = relationship()


class EnforcementAction(Base):
    """What was done about a confirmed case: dissuaded_on_site | ordered_to_rectify | penalty_referred."""

    __tablename__ = "enforcement_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was done
    notes: Mapped[str] = mapped_column(Text, default="")
    person_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    venue_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="actions")
    officer: Mapped[User] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id", back_populates="action")


class CaseNote(Base):
    """Append-only remarks on a case."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    text: Mapped[str] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="notes")
    author: Mapped[User] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id", back_populates="note")


class Attachment(Base):
    """A file (photo, scanned document, video) added to a case note or an enforcement action; see service.attachments."""

    __tablename__ = "attachments"
    __table_args__ = (CheckConstraint("(note_id IS NULL) <> (action_id IS NULL)", name="ck_attachments_one_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    note_id: Mapped[int | None] = mapped_column(ForeignKey("case_notes.id"), nullable=True, index=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("enforcement_actions.id"), nullable=True, index=True)
    original_name: Mapped[str] = mapped_column(String(255))  # sanitised
    path: Mapped[str] = mapped_column(Text)  # relative to the evidence root: attachments/<case id>/<random>-<name>
    content_type: Mapped[str] = mapped_column(String(100))  # from the file's first bytes, not from the client
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    note: Mapped[CaseNote | None] = relationship(back_populates="attachments")
    action: Mapped[EnforcementAction | None] = relationship(back_populates="attachments")
    uploaded_by: Mapped[User] = relationship()


class User(Base):
    """Someone who signs in (or an integration acting through an API token); role and scope decide what they see and do."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # stored lower-case
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id
    role: Mapped[str] = mapped_column(String(20))  # viewer | inspector | supervisor | admin
    all_sites: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    scopes: Mapped[list[UserScope]] = relationship(cascade="all, delete-orphan", order_by="UserScope.id", lazy="selectin")


class UserScope(Base):
    """One site or camera a user may see (their unit)."""

    __tablename__ = "user_scopes"
    __table_args__ = (UniqueConstraint("user_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # site | camera
    value: Mapped[str] = mapped_column(String(200))


class LoginSession(Base):
    """A signed-in browser; the cookie holds a random secret whose SHA-256 is the id."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """An integration's bearer token; only its SHA-256 is kept, and it acts as ``user``."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class LoginFailure(Base):
    """A failed sign-in, kept for the rate limit (in the DB so it holds across workers and restarts)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_username_ip_at", "username", "ip", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One link of the append-only, hash-chained audit trail (see service.audit)."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # assigned from the chain head
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40), index=True)
    target_type: Mapped[str] = mapped_column(String(30), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The single row (id 1) that every append locks: newest entry and count, so appends cannot fork the chain."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class AlertDelivery(Base):
    """One case-opened alert to one target, with the outcome of its latest attempt; the durable queue of service.alerts."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    target_name: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str] = mapped_column(String(20))  # webhook | wecom | dingtalk
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # None once sent or failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
