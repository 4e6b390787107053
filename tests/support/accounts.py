"""A small seeded world for API tests: two units with cameras, events, evidence and cases, and users of every role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service import accounts, cases, passwords, workflow
from service.api.app import create_app
from service.api.deps import AuthSettings
from service.audit import Auditor
from service.config import CameraConfig
from service.db.models import AuditEntry, Case, Event, EvidenceFile, User
from service.db.session import Database
from service.evidence import EvidenceStore
from service.login_sessions import SessionSettings

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"
# username -> (role, all_sites, sites, cameras)
USERS: dict[str, tuple[str, bool, list[str], list[str]]] = {
    "admin": ("admin", True, [], []),
    "viewer-a": ("viewer", False, ["unit-a"], []),
    "inspector-a": ("inspector", False, ["unit-a"], []),
    "supervisor-a": ("supervisor", False, ["unit-a"], []),
    "inspector-b": ("inspector", False, ["unit-b"], []),
    "inspector-lobby": ("inspector", False, [], ["lobby"]),  # scoped to one camera, not a site
    "supervisor-all": ("supervisor", True, [], []),
}
CAMERAS = [("lobby", "unit-a"), ("hall", "unit-a"), ("stairs", "unit-b")]


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's production cost is ~0.2 s a hash; tests sign in hundreds of times."""
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@dataclass
class World:
    database: Database
    store: EvidenceStore
    app: FastAPI
    user_ids: dict[str, int] = field(default_factory=dict)
    case_ids: dict[str, int] = field(default_factory=dict)  # event id -> its case
    file_ids: dict[str, int] = field(default_factory=dict)  # event id -> its clip

    def client(self, username: str | None = None, csrf: bool = True) -> TestClient:
        """A client signed in as ``username`` (None: anonymous), sending the CSRF header unless ``csrf`` is False."""
        client = TestClient(self.app)
        if username is not None:
            token = login(client, username)
            if csrf:
                client.headers["X-CSRF-Token"] = token
        return client

    def new_case(self, camera_id: str = "lobby", state: str = "pending_review") -> int:
        """A fresh camera case, walked to ``state`` by the admin."""
        event_id = f"ev-{camera_id}-{len(self.case_ids)}"
        with self.database.session() as session:
            event = Event(id=event_id, camera_id=camera_id, track_id=len(self.case_ids), started_at=T0, confirmed_at=T0, peak_score=0.9,
                          status="complete", evidence_dir=f"none/{event_id}", model_version="test", thresholds={})
            case = cases.open_event(session, event)
            self.case_ids[event_id] = case.id
            walk_to(Auditor(session, session.get(User, self.user_ids["admin"])), case, state)
            return case.id

    def case(self, case_id: int) -> Case:
        with self.database.session() as session:
            case = session.get(Case, case_id)
            assert case is not None
            return case

    def audit_count(self) -> int:
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def walk_to(auditor: Auditor, case: Case, state: str) -> None:
    """Take a pending case to any state through valid steps."""
    if state in ("confirmed", "closed"):
        workflow.confirm(auditor, case)
    if state == "closed":
        workflow.record_action(auditor, case, "dissuaded_on_site")
        workflow.close(auditor, case)
    if state in ("dismissed", "reopened"):
        workflow.dismiss(auditor, case, "test")
    if state == "reopened":
        workflow.reopen(auditor, case, "second look")


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


def build_world(database_url: str, root: Path) -> World:
    database = Database(database_url)
    store = EvidenceStore(root / "evidence")
    app = create_app(database, store, auth_settings=AuthSettings(sessions=SessionSettings(cookie_secure=False)))
    world = World(database, store, app)
    with database.session() as session:
        cases.sync_cameras(session, [CameraConfig(id=camera_id, site=site, source="rtsp://10.0.0.1/s") for camera_id, site in CAMERAS])
        for username, (role, all_sites, sites, cameras) in USERS.items():
            user = accounts.create_user(session, username, PASSWORD, role, display_name=username.title(), all_sites=all_sites,
                                        sites=sites, cameras=cameras)
            world.user_ids[username] = user.id
    for i, (camera_id, _site) in enumerate(CAMERAS):
        event_id = f"ev-{camera_id}"
        folder = store.event_dir(camera_id, event_id, T0)
        folder.mkdir(parents=True)
        (folder / "clip.mp4").write_bytes(bytes(range(256)) * 40)
        event = Event(id=event_id, camera_id=camera_id, track_id=i, started_at=T0 + timedelta(hours=i),
                      confirmed_at=T0 + timedelta(hours=i, seconds=2), peak_score=0.8, status="complete",
                      evidence_dir=folder.relative_to(store.root).as_posix(), model_version="test", thresholds={"k": 4})
        with database.session() as session:
            world.case_ids[event_id] = cases.open_event(session, event).id
            cases.add_files(session, event_id, [store.stored("clip", folder / "clip.mp4")])
            session.flush()
            world.file_ids[event_id] = session.scalar(select(EvidenceFile.id).where(EvidenceFile.event_id == event_id)) or 0
    return world


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    built = build_world(database_url, tmp_path)
    yield built
    built.database.dispose()
