"""The case workflow through the HTTP API: transitions, actions, assignment, notes, bulk dismiss, complaints, scope, bad input."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm.exc import StaleDataError

from service import accounts, audit, workflow
from service.api.app import create_app
from service.api.deps import AuthSettings
from service.audit import Auditor
from service.db.models import AuditEntry, Case, CaseNote, CaseTransition, EnforcementAction, User
from service.evidence import EvidenceStore
from service.login_sessions import SessionSettings
from tests.support.accounts import T0, World

STEP_REQUESTS = {  # step -> (path suffix, a valid body)
    "confirm": ("confirm", {"note": "clearly smoking"}),
    "dismiss": ("dismiss", {"reason": "not_smoking"}),
    "record_action": ("actions", {"kind": "dissuaded_on_site"}),
    "close": ("close", None),
    "reopen": ("reopen", {"reason": "the unit disputes it"}),
}
ALLOWED = {
    "pending_review": {"confirm", "dismiss"},
    "confirmed": {"record_action", "close"},
    "closed": {"reopen"},
    "dismissed": {"reopen"},
    "reopened": {"confirm", "dismiss"},
}


def table_counts(world: World) -> tuple[int, ...]:
    with world.database.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(table)) or 0
                     for table in (AuditEntry, CaseTransition, EnforcementAction, CaseNote, Case))


def test_full_lifecycle(world):
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-lobby"]
    assert client.get(f"/api/cases/{case_id}").json()["allowed_steps"] == ["confirm", "dismiss"]
    confirmed = client.post(f"/api/cases/{case_id}/confirm", json={"note": "cigarette visible"}).json()
    assert confirmed["state"] == "confirmed" and confirmed["allowed_steps"] == ["record_action", "close"]

    action = client.post(f"/api/cases/{case_id}/actions", json={
        "kind": "penalty_referred", "at": "2026-11-02T10:30:00+08:00", "notes": "referred to the health bureau",
        "person_count": 2, "venue_name": "3F east corridor"})
    assert action.status_code == 201
    recorded = action.json()["actions"][0]
    assert recorded["kind"] == "penalty_referred" and recorded["officer"]["username"] == "inspector-a"
    assert recorded["at"] == "2026-11-02T02:30:00Z" and recorded["person_count"] == 2 and recorded["venue_name"] == "3F east corridor"

    assert client.post(f"/api/cases/{case_id}/close", json={"note": "done"}).json()["state"] == "closed"
    assert client.post(f"/api/cases/{case_id}/reopen", json={"reason": "wrong person"}).json()["state"] == "reopened"
    dismissed = client.post(f"/api/cases/{case_id}/dismiss", json={"reason": "other", "text": "it was a vape pen prop"}).json()
    assert (dismissed["state"], dismissed["dismiss_reason"], dismissed["dismiss_text"]) == ("dismissed", "other", "it was a vape pen prop")
    assert client.post(f"/api/cases/{case_id}/reopen", json={"reason": "vape pens count too"}).json()["state"] == "reopened"
    final = client.post(f"/api/cases/{case_id}/confirm").json()  # no body needed
    assert final["state"] == "confirmed" and final["dismiss_reason"] is None

    history = [(t["from_state"], t["to_state"], t["reason"], t["note"]) for t in final["transitions"]]
    assert history == [
        ("pending_review", "confirmed", "", "cigarette visible"), ("confirmed", "closed", "", "done"),
        ("closed", "reopened", "", "wrong person"), ("reopened", "dismissed", "other", "it was a vape pen prop"),
        ("dismissed", "reopened", "", "vape pens count too"), ("reopened", "confirmed", "", "")]
    assert all(t["user"]["username"] == "inspector-a" for t in final["transitions"])
    states = client.get("/api/cases", params={"state": "confirmed"}).json()
    assert [c["id"] for c in states["items"]] == [case_id]


@pytest.mark.parametrize("state", list(ALLOWED))
def test_every_step_from_every_state(world, state):
    """Allowed steps work; every other one is a 409 naming the allowed steps, and changes nothing."""
    client = world.client("inspector-a")
    for step, (suffix, body) in STEP_REQUESTS.items():
        case_id = world.new_case("lobby", state)
        if step == "close" and state == "confirmed":
            client.post(f"/api/cases/{case_id}/actions", json={"kind": "ordered_to_rectify"})
        before = table_counts(world)
        response = client.post(f"/api/cases/{case_id}/{suffix}", json=body)
        if step in ALLOWED[state]:
            assert response.status_code in (200, 201), (state, step, response.text)
        else:
            assert response.status_code == 409, (state, step, response.text)
            message = response.json()["detail"]
            assert f"case {case_id} is {state}" in message and f"allowed from {state}: " in message
            assert all(allowed in message for allowed in ALLOWED[state]), message
            assert table_counts(world) == before and world.case(case_id).state == state


def test_closing_needs_an_enforcement_action(world):
    client = world.client("inspector-a")
    case_id = world.new_case("lobby", "confirmed")
    response = client.post(f"/api/cases/{case_id}/close")
    assert response.status_code == 409 and "no enforcement action" in response.json()["detail"]
    assert world.case(case_id).state == "confirmed"


def test_dismiss_reasons(world):
    client = world.client("inspector-a")
    for reason in ("not_smoking", "designated_smoking_area", "test", "duplicate"):
        assert client.post(f"/api/cases/{world.new_case()}/dismiss", json={"reason": reason}).json()["dismiss_reason"] == reason
    case_id = world.new_case()
    for body in ({"reason": "bored"}, {"reason": "other"}, {"reason": "other", "text": "   "}, {}, {"reason": "test", "extra": 1},
                 {"reason": "test", "text": "x" * 5001}):
        assert client.post(f"/api/cases/{case_id}/dismiss", json=body).status_code == 422, body
    assert world.case(case_id).state == "pending_review"


def test_enforcement_action_validation(world):
    client = world.client("inspector-a")
    case_id = world.new_case("lobby", "confirmed")
    for body in ({"kind": "fined_on_the_spot"}, {"kind": "dissuaded_on_site", "at": "2026-11-02T10:30:00"},
                 {"kind": "dissuaded_on_site", "at": "tomorrow"}, {"kind": "dissuaded_on_site", "person_count": -1},
                 {"kind": "dissuaded_on_site", "person_count": "two"}, {"kind": "dissuaded_on_site", "officer_id": 1},
                 {"kind": "dissuaded_on_site", "venue_name": "v" * 201}):
        assert client.post(f"/api/cases/{case_id}/actions", json=body).status_code == 422, body
    assert client.get(f"/api/cases/{case_id}").json()["actions"] == []


def test_assignment(world):
    supervisor = world.client("supervisor-a")
    case_id = world.case_ids["ev-lobby"]
    officers = [u["username"] for u in supervisor.get(f"/api/cases/{case_id}/assignable").json()]
    assert officers == ["admin", "inspector-a", "inspector-lobby", "supervisor-a", "supervisor-all"]  # no viewer, no unit B
    assigned = supervisor.post(f"/api/cases/{case_id}/assign", json={"user_id": world.user_ids["inspector-a"]})
    assert assigned.status_code == 200 and assigned.json()["assignee"]["username"] == "inspector-a"
    inspector = world.client("inspector-a")
    assert [c["id"] for c in inspector.get("/api/cases", params={"assignee": "me"}).json()["items"]] == [case_id]
    assert inspector.get("/api/cases", params={"assignee": "none"}).json()["total"] == 1  # the hall case
    for user, status, words in (("viewer-a", 409, "viewer"), ("inspector-b", 409, "outside the scope"), (None, 200, "")):
        response = supervisor.post(f"/api/cases/{case_id}/assign", json={"user_id": world.user_ids[user] if user else None})
        assert response.status_code == status and words in response.text, (user, response.text)
    hall = world.case_ids["ev-hall"]  # inspector-lobby covers the lobby camera only
    assert supervisor.post(f"/api/cases/{hall}/assign", json={"user_id": world.user_ids["inspector-lobby"]}).status_code == 409
    assert supervisor.post(f"/api/cases/{case_id}/assign", json={"user_id": 999}).status_code == 404
    assert supervisor.post(f"/api/cases/{case_id}/assign", json={}).status_code == 422
    assert inspector.post(f"/api/cases/{case_id}/assign", json={"user_id": world.user_ids["inspector-a"]}).status_code == 403
    actions = [e["action"] for e in world.client("admin").get("/api/audit", params={"target_type": "case"}).json()["items"]]
    assert actions.count("case_assigned") == 1 and actions.count("case_unassigned") == 1


def test_notes_are_append_only(world):
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-hall"]
    client.post(f"/api/cases/{case_id}/notes", json={"text": "phoned the building manager"})
    notes = world.client("supervisor-a").post(f"/api/cases/{case_id}/notes", json={"text": "follow up Monday"}).json()["notes"]
    assert [(n["author"]["username"], n["text"]) for n in notes] == [("inspector-a", "phoned the building manager"),
                                                                     ("supervisor-a", "follow up Monday")]
    assert client.post(f"/api/cases/{case_id}/notes", json={"text": ""}).status_code == 422
    assert client.post(f"/api/cases/{case_id}/notes", json={"text": "n" * 5001}).status_code == 422
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, f"/api/cases/{case_id}/notes").status_code == 405
    assert world.client("viewer-a").get(f"/api/cases/{case_id}").json()["notes"] == notes


def test_bulk_dismiss_is_all_or_nothing(world):
    client = world.client("inspector-a")
    first, second = world.new_case(), world.new_case("hall")
    closed, other_unit = world.new_case("lobby", "closed"), world.case_ids["ev-stairs"]
    before = table_counts(world)

    missing = client.post("/api/cases/bulk-dismiss", json={"case_ids": [first, other_unit, 999, second], "reason": "test"})
    assert missing.status_code == 404 and missing.json()["detail"] == f"no case {other_unit}, 999; nothing was dismissed"
    stuck = client.post("/api/cases/bulk-dismiss", json={"case_ids": [first, closed, second], "reason": "duplicate"})
    assert stuck.status_code == 409 and f"case {closed} (closed)" in stuck.json()["detail"]
    for body in ({"case_ids": [], "reason": "test"}, {"case_ids": list(range(1, 502)), "reason": "test"},
                 {"case_ids": [first], "reason": "nope"}, {"case_ids": [first], "reason": "other"}, {"case_ids": ["a"], "reason": "test"}):
        assert client.post("/api/cases/bulk-dismiss", json=body).status_code == 422, body
    assert table_counts(world) == before
    assert {world.case(i).state for i in (first, second)} == {"pending_review"}

    done = client.post("/api/cases/bulk-dismiss", json={"case_ids": [first, second, first], "reason": "other", "text": "drill"})
    assert done.status_code == 200 and done.json() == {"dismissed": [first, second]}
    for case_id in (first, second):
        case = world.case(case_id)
        assert (case.state, case.dismiss_reason, case.dismiss_text) == ("dismissed", "other", "drill")
    with world.database.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "case_dismissed")).all()
        assert sorted(int(e.target_id) for e in entries if e.details.get("bulk")) == sorted([first, second])


def test_complaint_opened_by_hand_then_linked_to_footage(world):
    client = world.client("inspector-a")
    body = {"source": "phone", "description": "someone smokes in the stairwell every noon", "reporter_contact": "138-0000-0000",
            "site": "unit-a", "occurred_at": "2026-11-02T12:00:00+08:00"}
    created = client.post("/api/complaints", json=body)
    assert created.status_code == 201
    complaint = created.json()
    assert (complaint["state"], complaint["source"], complaint["site"], complaint["event"], complaint["camera"]) == (
        "pending_review", "phone", "unit-a", None, None)
    assert complaint["occurred_at"] == "2026-11-02T04:00:00Z" and complaint["created_by"]["username"] == "inspector-a"
    assert client.get("/api/cases", params={"source": "phone"}).json()["total"] == 1
    assert world.client("viewer-a").get(f"/api/cases/{complaint['id']}").status_code == 200
    assert world.client("inspector-b").get(f"/api/cases/{complaint['id']}").status_code == 404

    linked = client.post(f"/api/cases/{complaint['id']}/link-event", json={"event_id": "ev-hall"})
    assert linked.status_code == 200 and linked.json()["linked_event"]["id"] == "ev-hall"
    assert linked.json()["linked_event"]["files"][0]["url"] == f"/api/evidence/{world.file_ids['ev-hall']}"
    assert client.post(f"/api/cases/{complaint['id']}/link-event", json={"event_id": "ev-stairs"}).status_code == 404  # unit B
    assert world.client("admin").post(f"/api/cases/{complaint['id']}/link-event", json={"event_id": "ev-stairs"}).status_code == 409
    camera_case = world.case_ids["ev-lobby"]
    assert client.post(f"/api/cases/{camera_case}/link-event", json={"event_id": "ev-hall"}).status_code == 409
    assert client.post(f"/api/cases/{complaint['id']}/link-event", json={"event_id": "nope"}).status_code == 404

    client.post(f"/api/cases/{complaint['id']}/confirm")
    client.post(f"/api/cases/{complaint['id']}/actions", json={"kind": "ordered_to_rectify"})
    assert client.post(f"/api/cases/{complaint['id']}/close").json()["state"] == "closed"


def test_complaint_validation_and_scope(world):
    client = world.client("inspector-a")
    base = {"source": "email", "description": "smoke", "occurred_at": "2026-11-02T12:00:00Z"}
    by_camera = client.post("/api/complaints", json=base | {"camera_id": "hall"})
    assert by_camera.status_code == 201 and by_camera.json()["site"] == "unit-a" and by_camera.json()["camera_id"] == "hall"
    for body, status in (
        (base | {"site": "unit-b"}, 403), (base | {"camera_id": "stairs"}, 404), (base | {"camera_id": "ghost"}, 404),
        (base | {"camera_id": "hall", "site": "unit-c"}, 422), (base, 422), (base | {"site": "unit-a", "source": "fax"}, 422),
        (base | {"site": "unit-a", "occurred_at": "2026-11-02T12:00:00"}, 422), (base | {"site": "unit-a", "occurred_at": "noon"}, 422),
        (base | {"site": "unit-a", "description": ""}, 422), (base | {"site": "unit-a", "photo": "x"}, 422),
    ):
        assert client.post("/api/complaints", json=body).status_code == status, body
    lobby_only = world.client("inspector-lobby")
    assert lobby_only.post("/api/complaints", json=base | {"camera_id": "lobby"}).status_code == 201
    assert lobby_only.post("/api/complaints", json=base | {"site": "unit-a"}).status_code == 403
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Case).where(Case.source != "camera")) == 2


def test_scope_isolation(world):
    """A unit-A user never sees or changes unit B's cases, events, cameras or evidence: lists filter, ids answer 404."""
    client = world.client("inspector-a")
    assert {c["camera_id"] for c in client.get("/api/cases").json()["items"]} == {"lobby", "hall"}
    assert client.get("/api/cases", params={"site": "unit-b"}).json()["total"] == 0
    assert client.get("/api/cases", params={"camera": "stairs"}).json()["total"] == 0
    assert {e["camera_id"] for e in client.get("/api/events").json()["items"]} == {"lobby", "hall"}
    assert {c["id"] for c in client.get("/api/cameras").json()} == {"lobby", "hall"}

    b_case, b_file = world.case_ids["ev-stairs"], world.file_ids["ev-stairs"]
    for path in (f"/api/cases/{b_case}", "/api/events/ev-stairs", "/api/cameras/stairs", f"/api/evidence/{b_file}"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["detail"].startswith("no "), path
        assert client.get(path.replace("stairs", "ghost").replace(str(b_file), "999").replace(str(b_case), "999")).json() == {
            "detail": response.json()["detail"].replace("stairs", "ghost").replace(str(b_file), "999").replace(str(b_case), "999")}
    supervisor = world.client("supervisor-a")
    before = table_counts(world)
    for suffix, body in [*STEP_REQUESTS.values(), ("notes", {"text": "x"}), ("link-event", {"event_id": "ev-lobby"})]:
        assert client.post(f"/api/cases/{b_case}/{suffix}", json=body).status_code == 404, suffix
    assert supervisor.post(f"/api/cases/{b_case}/assign", json={"user_id": world.user_ids["supervisor-a"]}).status_code == 404
    assert supervisor.get(f"/api/cases/{b_case}/assignable").status_code == 404
    assert table_counts(world) == before and world.case(b_case).state == "pending_review"

    lobby_only = world.client("inspector-lobby")
    assert [c["camera_id"] for c in lobby_only.get("/api/cases").json()["items"]] == ["lobby"]
    assert lobby_only.get(f"/api/evidence/{world.file_ids['ev-hall']}").status_code == 404
    everything = world.client("supervisor-all")
    assert everything.get("/api/cases").json()["total"] == 3 and len(everything.get("/api/cameras").json()) == 3


def test_bad_input(world):
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-lobby"]
    assert client.post("/api/cases/999/confirm").status_code == 404
    assert client.post("/api/cases/abc/confirm").status_code == 422
    assert client.get("/api/cases/abc").status_code == 422
    for params in ({"since": "yesterday"}, {"until": "2026-13-01T00:00:00Z"}, {"since": "2026-01-01T00:00:00"}, {"limit": 0},
                   {"limit": 501}, {"offset": -1}, {"state": "lost"}, {"source": "fax"}, {"assignee": "bob"},
                   {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}):
        assert client.get("/api/cases", params=params).status_code == 422, params
    assert client.get("/api/events", params={"since": "soon"}).status_code == 422
    json_header = {"Content-Type": "application/json"}
    assert client.post(f"/api/cases/{case_id}/dismiss", content=b"not json", headers=json_header).status_code == 422
    assert client.post(f"/api/cases/{case_id}/dismiss", json=["not_smoking"]).status_code == 422
    assert client.post(f"/api/cases/{case_id}/dismiss", content=b"reason=test", headers={"Content-Type": "text/plain"}).status_code == 422
    huge = client.post(f"/api/cases/{case_id}/notes", json={"text": "x" * (2 << 20)})
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b" " * 65536

    streamed = client.post(f"/api/cases/{case_id}/notes", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert world.case(case_id).state == "pending_review" and client.get(f"/api/cases/{case_id}").json()["notes"] == []


def test_concurrent_change_of_the_same_case_is_refused(world):
    """Two reviewers on one case: the one who loaded it before the other's change cannot overwrite it."""
    case_id = world.case_ids["ev-lobby"]
    with world.database.sessions() as stale:
        case = stale.get(Case, case_id)
        auditor = Auditor(stale, stale.get(User, world.user_ids["inspector-a"]))
        assert world.client("supervisor-a").post(f"/api/cases/{case_id}/confirm").status_code == 200
        with pytest.raises(StaleDataError):  # it still believes the case is pending_review
            workflow.dismiss(auditor, case, "not_smoking")
            stale.commit()
    assert world.case(case_id).state == "confirmed"


def test_cases_from_before_migration_0002_join_the_workflow(database_url, tmp_path):
    """A database at revision 0001 with a case in it upgrades, and the old case can be reviewed like any other."""
    from alembic import command
    from alembic.config import Config

    from service.db.session import MIGRATIONS, Database, make_engine
    from tests.support.accounts import PASSWORD, login

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO cameras (id, name, site, building, floor, location_type, source, status, status_reason, "
                                "updated_at) VALUES ('old-cam', 'old', 'unit-a', '', '', 'hall', '', 'online', '', :t)"), {"t": T0})
        connection.execute(text("INSERT INTO events (id, camera_id, track_id, started_at, confirmed_at, peak_score, status, status_detail, "
                                "evidence_dir, model_version, thresholds, created_at) VALUES ('old-ev', 'old-cam', 1, :t, :t, 0.9, "
                                "'complete', '', 'x', 'v0', '{}', :t)"), {"t": T0})
        connection.execute(text("INSERT INTO cases (event_id, camera_id, state, opened_at, updated_at) "
                                "VALUES ('old-ev', 'old-cam', 'pending_review', :t, :t)"), {"t": T0})
    engine.dispose()

    database = Database(database_url)  # migrates to head
    try:
        with database.session() as session:
            accounts.create_user(session, "inspector", PASSWORD, "inspector", sites=["unit-a"])
        client = TestClient(create_app(database, EvidenceStore(tmp_path / "evidence"),
                                       auth_settings=AuthSettings(sessions=SessionSettings(cookie_secure=False))))
        client.headers["X-CSRF-Token"] = login(client, "inspector")
        old = client.get("/api/cases").json()["items"][0]
        assert (old["event_id"], old["source"], old["assignee"], old["dismiss_reason"]) == ("old-ev", "camera", None, None)
        assert client.post(f"/api/cases/{old['id']}/confirm").json()["state"] == "confirmed"
        with database.session() as session:
            assert session.scalar(select(Case.version).where(Case.id == old["id"])) == 2
            assert audit.verify_chain(session).ok
    finally:
        database.dispose()
