"""API schemas, kept apart from the ORM tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

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


class UserRef(Public):
    id: int
    username: str
    display_name: str


class UserPublic(UserRef):
    role: str
    all_sites: bool
    sites: list[str] = []
    cameras: list[str] = []
    active: bool
    created_at: datetime


class SignedIn(BaseModel):
    user: UserPublic
    csrf_token: str  # send back in the X-CSRF-Token header on every POST/PATCH/DELETE


class TokenPublic(Public):
    id: int
    name: str
    prefix: str
    user: UserRef
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    token: str  # shown only now; only its hash is kept


class TransitionPublic(Public):
    from_state: str
    to_state: str
    at: datetime
    user: UserRef
    reason: str
    note: str


class AttachmentPublic(Public):
    id: int
    case_id: int
    note_id: int | None
    action_id: int | None
    original_name: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: UserRef
    uploaded_at: datetime
    url: str = ""

    @model_validator(mode="after")
    def _download_url(self) -> AttachmentPublic:
        self.url = f"/api/attachments/{self.id}"
        return self


class ActionPublic(Public):
    id: int
    kind: str
    officer: UserRef
    at: datetime
    notes: str
    person_count: int | None
    venue_name: str | None
    recorded_at: datetime
    attachments: list[AttachmentPublic] = []


class NotePublic(Public):
    id: int
    author: UserRef
    at: datetime
    text: str
    attachments: list[AttachmentPublic] = []


class CasePublic(Public):
    id: int
    state: str
    opened_at: datetime
    updated_at: datetime
    camera_id: str | None
    event_id: str | None
    site: str | None = None
    snapshot_url: str | None = None
    source: str  # camera | phone | email | in_person
    occurred_at: datetime | None
    linked_event_id: str | None
    assignee: UserRef | None
    dismiss_reason: str | None


class CaseDetail(CasePublic):
    camera: CameraPublic | None
    event: EventDetail | None
    linked_event: EventDetail | None = None
    description: str
    reporter_contact: str
    dismiss_text: str
    created_by: UserRef | None
    allowed_steps: list[str] = []
    transitions: list[TransitionPublic] = []
    actions: list[ActionPublic] = []
    notes: list[NotePublic] = []


class Health(BaseModel):
    status: str  # ok | degraded
    database: str
    storage: str
    cameras_online: int
    cameras_offline: int


# --- requests: every body forbids unknown fields --------------------------------------------------

class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Username = Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]+$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=256, strip_whitespace=False)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=5000)]
Role = Literal["viewer", "inspector", "supervisor", "admin"]
DismissReason = Literal["not_smoking", "designated_smoking_area", "test", "duplicate", "other"]
ActionKind = Literal["dissuaded_on_site", "ordered_to_rectify", "penalty_referred"]
ComplaintSource = Literal["phone", "email", "in_person"]
Names = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=200)]], Field(max_length=200)]


class LoginRequest(Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password


class PasswordChange(Body):
    current_password: Password
    new_password: NewPassword


class UserCreate(Body):
    username: Username
    password: NewPassword
    role: Role
    display_name: ShortText = ""
    all_sites: bool = False
    sites: Names = []
    cameras: Names = []


class UserUpdate(Body):
    """Only the fields given change; ``sites``/``cameras`` replace the whole list."""

    display_name: ShortText | None = None
    role: Role | None = None
    all_sites: bool | None = None
    sites: Names | None = None
    cameras: Names | None = None
    active: bool | None = None
    password: NewPassword | None = None


class TokenCreate(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    user_id: int
    expires_at: AwareDatetime | None = None


class ConfirmRequest(Body):
    note: LongText = ""


class DismissRequest(Body):
    reason: DismissReason
    text: LongText = ""

    @model_validator(mode="after")
    def _other_needs_text(self) -> DismissRequest:
        if self.reason == "other" and not self.text:
            raise ValueError("reason 'other' needs a text saying why")
        return self


class BulkDismissRequest(DismissRequest):
    case_ids: Annotated[list[int], Field(min_length=1, max_length=500)]


class ActionCreate(Body):
    kind: ActionKind
    at: AwareDatetime | None = None  # when it was done; default now
    notes: LongText = ""
    person_count: Annotated[int, Field(ge=0, le=10000)] | None = None
    venue_name: ShortText | None = None


class CloseRequest(Body):
    note: LongText = ""


class ReopenRequest(Body):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class AssignRequest(Body):
    user_id: int | None  # null takes the case back


class NoteCreate(Body):
    text: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class ComplaintCreate(Body):
    source: ComplaintSource
    description: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    reporter_contact: ShortText = ""
    site: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None  # defaults to the camera's site
    camera_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    occurred_at: AwareDatetime

    @model_validator(mode="after")
    def _site_or_camera(self) -> ComplaintCreate:
        if self.site is None and self.camera_id is None:
            raise ValueError("give the site (and optionally the camera) the complaint is about")
        return self


class LinkEventRequest(Body):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=32)]


# --- responses ---------------------------------------------------------------------------------

class BulkDismissed(BaseModel):
    dismissed: list[int]


class AuditEntryPublic(Public):
    id: int
    at: datetime
    user_id: int | None
    username: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, object]
    hash: str


class AlertDeliveryPublic(Public):
    id: int
    case_id: int
    target_name: str
    target_type: str
    status: str
    attempts: int
    last_error: str
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
