"""Attachments on notes and enforcement actions: allowed types by content, size limit, refusals leaving nothing behind,
scope and roles, the hash check on download, and the case export."""

import hashlib
import io
import json
import zipfile

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from service.config import AppConfig, StorageSettings
from service.db.models import Attachment, AuditEntry
from tests.support.accounts import World

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
JPEG = cv2.imencode(".jpg", np.full((16, 16, 3), 120, np.uint8))[1].tobytes()
PNG = cv2.imencode(".png", np.full((16, 16, 3), 60, np.uint8))[1].tobytes()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free" + bytes(200)
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(300)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def add_note(client, case_id: int, text: str = "photo of the scene") -> int:  # type: ignore[no-untyped-def]
    answer = client.post(f"/api/cases/{case_id}/notes", json={"text": text})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["notes"][-1]["id"])


def add_action(world: World, client) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    case_id = world.new_case("lobby", "confirmed")
    answer = client.post(f"/api/cases/{case_id}/actions", json={"kind": "ordered_to_rectify", "venue_name": "3F"})
    assert answer.status_code == 201, answer.text
    return case_id, int(answer.json()["actions"][-1]["id"])


def upload(client, case_id: int, name: str, data: bytes, **owner: int):  # type: ignore[no-untyped-def]
    return client.post(f"/api/cases/{case_id}/attachments", files={"file": (name, data, "application/octet-stream")},
                       data={key: str(value) for key, value in owner.items()})


def stored_files(world: World) -> list[str]:
    folder = world.store.root / "attachments"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def attachment_rows(world: World) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(Attachment)) or 0


def audit_of(world: World, action: str) -> list[AuditEntry]:
    with world.database.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_each_allowed_type_on_notes_and_actions(world):
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-lobby"]
    note_id = add_note(client, case_id)
    made = {}
    for name, data, content_type in (("现场照片.jpeg", JPEG, "image/jpeg"), ("scan.PNG", PNG, "image/png"),
                                     ("../../etc/整改通知书.pdf", PDF, "application/pdf")):
        answer = upload(client, case_id, name, data, note_id=note_id)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert (body["content_type"], body["size_bytes"], body["sha256"]) == (content_type, len(data), hashlib.sha256(data).hexdigest())
        assert body["note_id"] == note_id and body["action_id"] is None and body["uploaded_by"]["username"] == "inspector-a"
        made[body["id"]] = data
    assert [a["original_name"] for a in client.get(f"/api/cases/{case_id}").json()["notes"][0]["attachments"]] == [
        "现场照片.jpg", "scan.png", "整改通知书.pdf"]  # sanitised: last path part, extension of the sniffed type

    action_case, action_id = add_action(world, client)
    answer = upload(client, action_case, "clip.mov", MP4, action_id=action_id)
    assert answer.status_code == 201 and answer.json()["content_type"] == "video/mp4", answer.text
    made[answer.json()["id"]] = MP4
    detail = client.get(f"/api/cases/{action_case}").json()
    assert [a["url"] for a in detail["actions"][0]["attachments"]] == [f"/api/attachments/{answer.json()['id']}"]

    files = stored_files(world)
    assert len(files) == 4 and all(f.startswith((f"{case_id}/", f"{action_case}/")) for f in files)
    assert not any(name.endswith(".tmp") for name in files)
    added = audit_of(world, "attachment_added")
    assert [entry.details["attachment_id"] for entry in added] == list(made)
    assert added[0].target_id == str(case_id) and added[0].details["sha256"] == hashlib.sha256(JPEG).hexdigest()

    viewer = world.client("viewer-a")  # viewers read attachments within scope
    for attachment_id, data in made.items():
        served = viewer.get(f"/api/attachments/{attachment_id}")
        assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "video/mp4"
    assert [entry.target_id for entry in audit_of(world, "attachment_viewed")] == [str(i) for i in made]


def test_refused_uploads_store_nothing(world):
    world.app.state.config = AppConfig(storage=StorageSettings(max_attachment_mb=0.01))  # 10 485 bytes
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-lobby"]
    note_id = add_note(client, case_id)
    other_note = add_note(client, world.case_ids["ev-hall"])

    refused = {
        "a little over the limit (checked by the route)": (upload(client, case_id, "big.png", PNG + bytes(12_000), note_id=note_id), 413),
        "far over the limit (cut off while reading)": (upload(client, case_id, "huge.jpg", JPEG + bytes(300_000), note_id=note_id), 413),
        "an .exe renamed .jpg": (upload(client, case_id, "photo.jpg", EXE, note_id=note_id), 415),
        "HTML renamed .png": (upload(client, case_id, "photo.png", HTML, note_id=note_id), 415),
        "an empty file": (upload(client, case_id, "empty.pdf", b"", note_id=note_id), 415),
        "no owner": (upload(client, case_id, "a.png", PNG), 422),
        "two owners": (upload(client, case_id, "a.png", PNG, note_id=note_id, action_id=1), 422),
        "another case's note": (upload(client, case_id, "a.png", PNG, note_id=other_note), 404),
        "an unknown case": (upload(client, 999_999, "a.png", PNG, note_id=note_id), 404),
        "out of scope": (upload(world.client("inspector-b"), case_id, "a.png", PNG, note_id=note_id), 404),
        "a viewer": (upload(world.client("viewer-a"), case_id, "a.png", PNG, note_id=note_id), 403),
        "no CSRF token": (upload(world.client("inspector-a", csrf=False), case_id, "a.png", PNG, note_id=note_id), 403),
    }
    for what, (answer, status) in refused.items():
        assert answer.status_code == status, (what, answer.text)
    assert "at most 0.01 MB" in refused["a little over the limit (checked by the route)"][0].json()["detail"]
    assert "at most 0.01 MB" in refused["far over the limit (cut off while reading)"][0].json()["detail"]
    assert "JPEG, PNG, PDF or MP4" in refused["HTML renamed .png"][0].json()["detail"]
    assert "CSRF" in refused["no CSRF token"][0].json()["detail"]
    assert stored_files(world) == [] and attachment_rows(world) == 0 and audit_of(world, "attachment_added") == []


@SQLITE_ONLY
def test_a_failure_after_writing_removes_the_file_and_the_row(world, monkeypatch):
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-lobby"]
    note_id = add_note(client, case_id)
    before = world.audit_count()

    def broken_replace(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("service.attachments.os.replace", broken_replace)
    with pytest.raises(OSError):
        upload(client, case_id, "a.png", PNG, note_id=note_id)
    assert stored_files(world) == [] and attachment_rows(world) == 0 and world.audit_count() == before


def test_download_checks_the_hash(world):
    client = world.client("inspector-a")
    case_id = world.case_ids["ev-lobby"]
    attachment = upload(client, case_id, "a.pdf", PDF, note_id=add_note(client, case_id)).json()
    assert client.get(attachment["url"]).content == PDF
    assert world.client("inspector-b").get(attachment["url"]).status_code == 404
    assert client.get("/api/attachments/999999").status_code == 404

    (path,) = (world.store.root / "attachments").rglob("*.pdf")
    path.write_bytes(PDF.replace(b"Catalog", b"Catalos"))
    answer = client.get(attachment["url"])
    assert answer.status_code == 409 and "does not match its recorded hash" in answer.json()["detail"]
    (mismatch,) = audit_of(world, "evidence_mismatch")
    assert (mismatch.target_type, mismatch.target_id, mismatch.details["case_id"]) == ("attachment", str(attachment["id"]), case_id)
    assert len(audit_of(world, "attachment_viewed")) == 1  # only the good download
    assert client.get(f"/api/cases/{case_id}/export").status_code == 409  # the export refuses it too


def test_export_carries_the_attachments(world):
    client = world.client("inspector-a")
    case_id, action_id = add_action(world, client)
    note_id = add_note(client, case_id)
    on_action = upload(client, case_id, "整改前.jpg", JPEG, action_id=action_id).json()
    on_note = upload(client, case_id, "notice.png", PNG, note_id=note_id).json()

    answer = world.client("viewer-a").get(f"/api/cases/{case_id}/export")
    assert answer.status_code == 200, answer.text
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    for attachment, data in ((on_action, JPEG), (on_note, PNG)):
        name = f"attachments/{attachment['id']}-{attachment['original_name']}"
        assert archive.read(name) == data and hashlib.sha256(archive.read(name)).hexdigest() == attachment["sha256"]
    manifest = {f["name"]: f["sha256"] for f in json.loads(archive.read("export-manifest.json"))["files"]}
    assert manifest[f"attachments/{on_note['id']}-notice.png"] == hashlib.sha256(PNG).hexdigest()
    history = json.loads(archive.read("case.json"))
    assert history["actions"][0]["attachments"][0]["sha256"] == on_action["sha256"]
    assert history["notes"][0]["attachments"][0]["original_name"] == "notice.png"
    assert [e["action"] for e in json.loads(archive.read("audit.json"))].count("attachment_added") == 2
    assert "notice.png" in archive.read("summary.html").decode()
