"""The hash-chained audit trail (what is recorded, `smokewatch audit verify`, tampering) and evidence checks on serve."""

import os
import threading

from sqlalchemy import func, select, text
from typer.testing import CliRunner

from service import audit, evidence_integrity
from service.cli import app as cli
from service.db.models import AuditEntry, User
from tests.support.accounts import World

runner = CliRunner()


def verify(database_url: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["audit", "verify", "--database-url", database_url])


def entries(world: World) -> list[AuditEntry]:
    with world.database.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def busy_day(world: World) -> None:
    """One of everything that is audited."""
    inspector, supervisor, admin = world.client("inspector-a"), world.client("supervisor-a"), world.client("admin")
    world.client().post("/api/auth/login", json={"username": "inspector-a", "password": "wrong-password"})
    case_id = world.case_ids["ev-lobby"]
    inspector.get(f"/api/evidence/{world.file_ids['ev-lobby']}", headers={"Range": "bytes=0-99"})
    inspector.post(f"/api/cases/{case_id}/confirm")
    inspector.post(f"/api/cases/{case_id}/actions", json={"kind": "dissuaded_on_site", "notes": "put it out"})
    inspector.post(f"/api/cases/{case_id}/notes", json={"text": "cooperative"})
    supervisor.post(f"/api/cases/{case_id}/assign", json={"user_id": world.user_ids["inspector-a"]})
    inspector.post(f"/api/cases/{case_id}/close")
    inspector.post(f"/api/cases/{case_id}/reopen", json={"reason": "recheck"})
    inspector.post(f"/api/cases/{case_id}/dismiss", json={"reason": "duplicate"})
    complaint = inspector.post("/api/complaints", json={"source": "in_person", "description": "smoke", "site": "unit-a",
                                                        "occurred_at": "2026-11-02T08:00:00Z"}).json()
    inspector.post(f"/api/cases/{complaint['id']}/link-event", json={"event_id": "ev-hall"})
    user = admin.post("/api/users", json={"username": "temp", "password": "temp-password-1", "role": "viewer", "sites": ["unit-a"]}).json()
    admin.patch(f"/api/users/{user['id']}", json={"active": False})
    token = admin.post("/api/tokens", json={"name": "bridge", "user_id": world.user_ids["viewer-a"]}).json()
    admin.delete(f"/api/tokens/{token['id']}")
    inspector.post("/api/auth/password", json={"current_password": "correct-horse-battery", "new_password": "another-password-2"})
    inspector.post("/api/auth/logout")


def test_everything_is_audited_and_the_chain_verifies(world, database_url):
    busy_day(world)
    recorded = entries(world)
    assert [e.action for e in recorded] == [
        "login_succeeded", "login_succeeded", "login_succeeded", "login_failed", "evidence_viewed", "case_confirmed",
        "case_action_recorded", "case_note_added", "case_assigned", "case_closed", "case_reopened", "case_dismissed",
        "complaint_opened", "complaint_linked", "user_created", "user_updated", "token_created", "token_revoked",
        "password_changed", "logout"]
    assert [e.id for e in recorded] == list(range(1, len(recorded) + 1))
    assert recorded[0].prev_hash == audit.GENESIS and all(b.prev_hash == a.hash for a, b in zip(recorded, recorded[1:], strict=False))
    viewed = recorded[4]
    assert (viewed.username, viewed.target_type, viewed.target_id) == ("inspector-a", "evidence_file", str(world.file_ids["ev-lobby"]))
    assert viewed.details["range"] == "bytes=0-99" and viewed.details["via"] == "session"
    action = recorded[6]
    assert action.details["kind"] == "dissuaded_on_site" and action.details["notes"] == "put it out"
    assert "temp-password-1" not in str([e.details for e in recorded])  # no secrets in the trail
    result = verify(database_url)
    assert result.exit_code == 0 and f"OK: {len(recorded)} entries" in result.output


def test_refused_or_failed_changes_leave_no_entry(world):
    client = world.client("inspector-a")
    before = len(entries(world))
    client.post(f"/api/cases/{world.case_ids['ev-lobby']}/close")  # 409
    client.post(f"/api/cases/{world.case_ids['ev-stairs']}/confirm")  # 404, other unit
    client.post(f"/api/cases/{world.case_ids['ev-lobby']}/dismiss", json={"reason": "bogus"})  # 422
    world.client("viewer-a", csrf=True)  # its sign-in is audited
    assert [e.action for e in entries(world)[before:]] == ["login_succeeded"]


def test_editing_an_entry_in_place_is_reported_with_its_id(world, database_url):
    busy_day(world)
    target = entries(world)[7]
    with world.database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET details = :details WHERE id = :id"),
                           {"details": '{"text": "nothing to see"}', "id": target.id})
    result = verify(database_url)
    assert result.exit_code == 1
    assert f"entry {target.id} ({target.action}): content changed" in result.output
    assert result.output.count("entry ") == 1  # only that entry


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link(world, database_url):
    busy_day(world)
    target = entries(world)[5]
    target.username = "someone-else"
    forged = audit.entry_hash(target)
    with world.database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET username = 'someone-else', hash = :hash WHERE id = :id"),
                           {"hash": forged, "id": target.id})
    result = verify(database_url)
    assert result.exit_code == 1 and f"entry {target.id + 1} " in result.output and "link broken" in result.output


def test_deleting_entries_is_reported_as_a_broken_link(world, database_url):
    busy_day(world)
    with world.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE id = 9"))
    result = verify(database_url)
    assert result.exit_code == 1
    assert "entry 10 (" in result.output and "link broken" in result.output and "entry 9 before it is missing" in result.output


def test_deleting_the_newest_entries_is_reported(world, database_url):
    busy_day(world)
    last = entries(world)[-1].id
    with world.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE id >= :id"), {"id": last - 1})
    result = verify(database_url)
    assert result.exit_code == 1 and f"entry {last - 1}: link broken" in result.output and "newest entries deleted" in result.output


def test_deleting_the_first_entry_is_reported(world, database_url):
    busy_day(world)
    with world.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE id = 1"))
    result = verify(database_url)
    assert result.exit_code == 1 and "entry 2 (" in result.output and "entry 1 before it is missing" in result.output


def test_concurrent_appends_do_not_fork_the_chain(world, database_url):
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def append(worker: int) -> None:
        try:
            start.wait()
            for i in range(8):
                with world.database.session() as session:
                    user = session.get(User, world.user_ids["admin"])
                    audit.Auditor(session, user).record("stress", "worker", worker, i=i)
        except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    recorded = entries(world)
    assert len(recorded) == 32 and len({e.prev_hash for e in recorded}) == 32
    assert verify(database_url).exit_code == 0


def test_a_modified_evidence_file_is_not_served_and_is_audited(world):
    client = world.client("inspector-a")
    file_id = world.file_ids["ev-lobby"]
    assert client.get(f"/api/evidence/{file_id}").status_code == 200
    clip = next(world.store.root.rglob("ev-lobby/clip.mp4"))
    data = bytearray(clip.read_bytes())
    data[100] ^= 0xFF  # one flipped byte, same size
    clip.write_bytes(bytes(data))
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # coarse file systems: make sure mtime moved
    response = client.get(f"/api/evidence/{file_id}", headers={"Range": "bytes=0-10"})
    assert response.status_code == 409
    relative = clip.relative_to(world.store.root).as_posix()
    assert response.json()["detail"].startswith(f"evidence file {relative} does not match its recorded hash")
    mismatch = entries(world)[-1]
    assert (mismatch.action, mismatch.target_type, mismatch.target_id, mismatch.username) == (
        "evidence_mismatch", "evidence_file", str(file_id), "inspector-a")
    assert client.get(f"/api/evidence/{world.file_ids['ev-hall']}").status_code == 200  # others still served


def test_range_requests_of_an_unchanged_file_hash_it_once(world, monkeypatch):
    calls = []
    real = evidence_integrity.sha256_file

    def counted(path):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(path)

    monkeypatch.setattr(evidence_integrity, "sha256_file", counted)
    client = world.client("viewer-a")
    url = f"/api/evidence/{world.file_ids['ev-lobby']}"
    full = client.get(url)
    for start in range(0, 10240, 2048):
        part = client.get(url, headers={"Range": f"bytes={start}-{start + 2047}"})
        assert part.status_code == 206 and part.content == full.content[start:start + 2048]
    assert len(calls) == 1
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "evidence_viewed")) == 6
