"""Case export: the zip's contents and hashes, scope, audit, and refusal when evidence was tampered with or is missing."""

import hashlib
import io
import json
import zipfile

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from service import cases
from service.db.models import AuditEntry, Case
from tests.support.accounts import World

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def add_snapshot(world: World, event_id: str = "ev-lobby") -> bytes:
    with world.database.session() as session:
        case = session.scalar(select(Case).where(Case.event_id == event_id))
        assert case is not None and case.event is not None
        folder = world.store.root / case.event.evidence_dir
    ok, encoded = cv2.imencode(".jpg", np.full((24, 32, 3), 200, np.uint8))
    assert ok
    (folder / "snapshot_annotated.jpg").write_bytes(encoded.tobytes())
    with world.database.session() as session:
        cases.add_files(session, event_id, [world.store.stored("snapshot_annotated", folder / "snapshot_annotated.jpg")])
    return encoded.tobytes()


def audit_actions(world: World, case_id: int) -> list[str]:
    with world.database.session() as session:
        return list(session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(case_id)).order_by(AuditEntry.id)))


def test_export_zip_contents_and_hashes(world):
    snapshot = add_snapshot(world)
    case_id = world.case_ids["ev-lobby"]
    inspector = world.client("inspector-a")
    inspector.post(f"/api/cases/{case_id}/confirm", json={"note": "cigarette visible"})
    inspector.post(f"/api/cases/{case_id}/actions", json={"kind": "dissuaded_on_site", "person_count": 2})
    inspector.post(f"/api/cases/{case_id}/notes", json={"text": "told the unit"})

    answer = world.client("viewer-a").get(f"/api/cases/{case_id}/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert f"case-{case_id}-" in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.testzip() is None
    names = set(archive.namelist())
    assert names == {"evidence/ev-lobby/clip.mp4", "evidence/ev-lobby/snapshot_annotated.jpg", "case.json", "audit.json", "summary.html",
                     "export-manifest.json"}

    detail = world.client("viewer-a").get(f"/api/cases/{case_id}").json()
    recorded = {f["kind"]: f["sha256"] for f in detail["event"]["files"]}
    assert hashlib.sha256(archive.read("evidence/ev-lobby/clip.mp4")).hexdigest() == recorded["clip"]
    assert archive.read("evidence/ev-lobby/snapshot_annotated.jpg") == snapshot
    manifest = json.loads(archive.read("export-manifest.json"))
    assert manifest["case_id"] == case_id and manifest["exported_by"] == "Viewer-A"
    assert {f["name"] for f in manifest["files"]} == names - {"export-manifest.json"}
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"], entry["name"]

    history = json.loads(archive.read("case.json"))
    assert history["id"] == case_id and history["state"] == "confirmed" and history["event"]["id"] == "ev-lobby"
    assert [t["to_state"] for t in history["transitions"]] == ["confirmed"]
    assert history["actions"][0]["person_count"] == 2 and history["notes"][0]["text"] == "told the unit"
    assert "assignee" in history
    audit = json.loads(archive.read("audit.json"))
    assert [e["action"] for e in audit] == ["case_confirmed", "case_action_recorded", "case_note_added"]
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in audit)

    summary = archive.read("summary.html").decode()
    assert '<html lang="zh-CN">' in summary and "<style>" in summary and "@media print" in summary
    assert "data:image/jpeg;base64," in summary and "现场劝阻" in summary and "已确认" in summary and "told the unit" in summary
    assert "http://" not in summary and "https://" not in summary  # self-contained

    assert audit_actions(world, case_id)[-1] == "case_exported"


@SQLITE_ONLY
def test_export_is_scoped_and_unknown_ids_are_404(world):
    case_id = world.case_ids["ev-lobby"]
    assert world.client("inspector-b").get(f"/api/cases/{case_id}/export").status_code == 404
    assert world.client("admin").get("/api/cases/999999/export").status_code == 404
    assert world.client().get(f"/api/cases/{case_id}/export").status_code == 401
    assert world.client("inspector-lobby").get(f"/api/cases/{case_id}/export").status_code == 200


@SQLITE_ONLY
def test_tampered_evidence_refuses_the_export(world):
    case_id = world.case_ids["ev-lobby"]
    clip = next(world.store.root.rglob("ev-lobby/clip.mp4"))
    clip.write_bytes(clip.read_bytes()[:-1] + b"X")
    answer = world.client("viewer-a").get(f"/api/cases/{case_id}/export")
    assert answer.status_code == 409 and "clip.mp4" in answer.json()["detail"]
    with world.database.session() as session:
        mismatch = session.scalar(select(AuditEntry).where(AuditEntry.action == "evidence_mismatch"))
        assert mismatch is not None and mismatch.details["case_id"] == case_id and mismatch.details["during"] == "case_export"
    assert "case_exported" not in audit_actions(world, case_id)

    clip.unlink()
    answer = world.client("viewer-a").get(f"/api/cases/{case_id}/export")
    assert answer.status_code == 410 and "clip.mp4" in answer.json()["detail"]


@SQLITE_ONLY
def test_complaint_without_footage_exports(world):
    opened = world.client("inspector-b").post("/api/complaints", json={
        "source": "phone", "description": "有人在楼梯间吸烟", "site": "unit-b", "occurred_at": "2026-11-03T10:00:00+08:00"})
    assert opened.status_code == 201, opened.text
    answer = world.client("inspector-b").get(f"/api/cases/{opened.json()['id']}/export")
    assert answer.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert set(archive.namelist()) == {"case.json", "audit.json", "summary.html", "export-manifest.json"}
    summary = archive.read("summary.html").decode()
    assert "电话举报" in summary and "有人在楼梯间吸烟" in summary and "无抓拍" in summary
    assert [e["action"] for e in json.loads(archive.read("audit.json"))] == ["complaint_opened"]
