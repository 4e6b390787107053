from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from service import accounts, cases
from service.api.app import create_app
from service.api.deps import AuthSettings
from service.config import CameraConfig
from service.db.models import Event
from service.db.session import Database
from service.evidence import EvidenceStore
from service.login_sessions import SessionSettings
from tests.support.accounts import PASSWORD, login

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def api(database_url, tmp_path):
    database = Database(database_url)
    store = EvidenceStore(tmp_path / "evidence")
    with database.session() as session:
        cases.sync_cameras(session, [
            CameraConfig(id="lobby", site="unit-a", source="rtsp://user:secret@10.0.0.1/s", location_type="elevator_lobby"),
            CameraConfig(id="stairs", site="unit-b", source="rtsp://10.0.0.2/s"),
        ])
    for i, camera_id in enumerate(["lobby", "lobby", "stairs"]):
        folder = store.event_dir(camera_id, f"ev{i}", T0)
        folder.mkdir(parents=True)
        (folder / "clip.mp4").write_bytes(bytes(range(256)) * 40)
        event = Event(id=f"ev{i}", camera_id=camera_id, track_id=i, started_at=T0 + timedelta(hours=i),
                      confirmed_at=T0 + timedelta(hours=i, seconds=2), peak_score=0.8, status="complete",
                      evidence_dir=folder.relative_to(store.root).as_posix(), model_version="test", thresholds={"k": 4})
        with database.session() as session:
            cases.open_event(session, event)
            cases.add_files(session, event.id, [store.stored("clip", folder / "clip.mp4")])
    with database.session() as session:
        accounts.create_user(session, "reader", PASSWORD, "viewer", all_sites=True)
    client = TestClient(create_app(database, store, auth_settings=AuthSettings(sessions=SessionSettings(cookie_secure=False))))
    login(client, "reader")
    yield client, database
    database.dispose()


def test_reading_needs_sign_in_but_health_and_metrics_do_not(api):
    client, _ = api
    anonymous = TestClient(client.app)
    for path in ("/api/cases", "/api/cases/1", "/api/events", "/api/events/ev0", "/api/cameras", "/api/cameras/lobby", "/api/evidence/1"):
        response = anonymous.get(path)
        assert response.status_code == 401 and "sign in" in response.json()["detail"], path
    assert anonymous.get("/api/health").status_code == 200 and anonymous.get("/metrics").status_code == 200


def test_cases_list_and_filters(api):
    client, _ = api
    body = client.get("/api/cases").json()
    assert body["total"] == 3 and {c["state"] for c in body["items"]} == {"pending_review"}
    assert client.get("/api/cases", params={"camera": "lobby"}).json()["total"] == 2
    assert client.get("/api/cases", params={"site": "unit-b"}).json()["total"] == 1
    since = (T0 + timedelta(minutes=30)).isoformat()
    assert client.get("/api/cases", params={"since": since}).json()["total"] == 2
    assert client.get("/api/cases", params={"state": "pending_review", "limit": 1}).json()["items"][0]["camera_id"] == "stairs"


def test_case_detail_has_event_and_files(api):
    client, _ = api
    case_id = client.get("/api/cases", params={"camera": "stairs"}).json()["items"][0]["id"]
    detail = client.get(f"/api/cases/{case_id}").json()
    assert detail["camera"]["id"] == "stairs" and detail["event"]["id"] == "ev2"
    assert detail["event"]["files"][0]["kind"] == "clip" and detail["event"]["files"][0]["url"].startswith("/api/evidence/")


def test_clip_supports_range_requests(api):
    client, _ = api
    url = client.get("/api/events/ev0").json()["files"][0]["url"]
    full = client.get(url)
    assert full.status_code == 200 and len(full.content) == 10240 and full.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == "bytes 100-199/10240"


def test_cameras_with_status_and_credentials_hidden(api):
    client, database = api
    with database.session() as session:
        cases.record_status(session, "lobby", "online", "connected")
        cases.record_status(session, "lobby", "offline", "read timeout")
    cameras = {c["id"]: c for c in client.get("/api/cameras").json()}
    assert cameras["lobby"]["status"] == "offline" and cameras["lobby"]["status_since"]
    detail = client.get("/api/cameras/lobby").json()
    assert [c["status"] for c in detail["status_changes"]] == ["online", "offline"]
    with database.session() as session:
        from service.db.models import Camera

        assert session.get(Camera, "lobby").source == "rtsp://***@10.0.0.1/s"


def test_bad_requests_get_clear_4xx(api):
    client, _ = api
    assert client.get("/api/cases/999").status_code == 404
    assert client.get("/api/events/nope").json()["detail"] == "no event 'nope'"
    assert client.get("/api/evidence/12345").status_code == 404
    assert client.get("/api/cases", params={"since": "yesterday"}).status_code == 422
    naive = client.get("/api/cases", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
    assert client.get("/api/cases", params={"state": "lost"}).status_code == 422
    assert client.get("/api/cases", params={"limit": 0}).status_code == 422


def test_health_and_metrics(api):
    client, _ = api
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    metrics = client.get("/metrics").text
    assert "smokewatch_storage_used_bytes" in metrics and "smokewatch_frames_analyzed_total" in metrics


def test_missing_evidence_file_is_reported(api):
    client, _ = api
    url = client.get("/api/events/ev1").json()["files"][0]["url"]
    store_root = client.app.state.store.root
    for clip in store_root.rglob("ev1/clip.mp4"):
        clip.unlink()
    response = client.get(url)
    assert response.status_code == 410 and "missing" in response.json()["detail"]
