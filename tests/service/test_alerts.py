"""Case-opened alerts against a real HTTP receiver on 127.0.0.1: bodies, DingTalk signature, retries, timeouts, the API, restarts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from detector import DetectorSettings
from service import cases
from service.alerts import AlertDispatcher, record_attempt
from service.config import AlertSettings, AlertTarget, AppConfig, CameraConfig
from service.db.models import AlertDelivery, AuditEntry, utcnow
from service.db.session import Database
from service.evidence import EvidenceStore
from service.metrics import Metrics
from service.monitor import Monitor
from tests.support.accounts import World
from tests.support.fixtures import Receiver, wait_for

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PUBLIC_URL = "http://smokewatch.local:8000"
SECRET = "SECtest-signing-secret"


def settings_for(receiver: Receiver, **overrides: Any) -> AlertSettings:
    targets = [AlertTarget(name="hook", type="webhook", url=f"{receiver.url}/hook"),
               AlertTarget(name="wecom", type="wecom", url=f"{receiver.url}/wecom?key=abc"),
               AlertTarget(name="ding", type="dingtalk", url=f"{receiver.url}/ding?access_token=tok", secret=SECRET),
               AlertTarget(name="unit-b only", type="webhook", url=f"{receiver.url}/b", sites=["unit-b"]),
               AlertTarget(name="off", type="webhook", url=f"{receiver.url}/off", enabled=False)]
    return AlertSettings(public_url=PUBLIC_URL, targets=overrides.pop("targets", targets), **overrides)


def deliveries(database: Database) -> list[AlertDelivery]:
    with database.session() as session:
        return list(session.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))



def add_snapshot(world: World, event_id: str) -> int:
    folder = world.store.root / "snapshots" / event_id
    folder.mkdir(parents=True)
    (folder / "snapshot_annotated.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with world.database.session() as session:
        cases.add_files(session, event_id, [world.store.stored("snapshot_annotated", folder / "snapshot_annotated.jpg")])
    return next(f["id"] for f in world.client("admin").get(f"/api/events/{event_id}").json()["files"] if f["kind"] == "snapshot_annotated")


def test_bodies_of_all_three_formats(world, receiver):
    case_id = world.case_ids["ev-lobby"]
    snapshot_id = add_snapshot(world, "ev-lobby")
    dispatcher = AlertDispatcher(world.database, settings_for(receiver))
    dispatcher.case_opened(case_id)
    queued = [(d.target_name, d.status) for d in deliveries(world.database)]
    assert queued == [("hook", "pending"), ("wecom", "pending"), ("ding", "pending")]  # not the unit-b only or the disabled target
    with httpx.Client(timeout=5) as client:
        assert dispatcher.send_due(client) == 3
    assert [(d.status, d.attempts, d.last_error) for d in deliveries(world.database)] == [("sent", 1, "")] * 3
    sent = {r["path"]: r for r in receiver.requests}
    assert set(sent) == {"/hook", "/wecom", "/ding"}

    snapshot_url, case_url = f"{PUBLIC_URL}/api/evidence/{snapshot_id}", f"{PUBLIC_URL}/cases/{case_id}"
    assert sent["/hook"]["body"] == {
        "event": "case_opened", "case_id": case_id,
        "camera": {"id": "lobby", "name": "lobby", "site": "unit-a", "building": "", "floor": "", "location_type": "other"},
        "started_at": "2026-11-02T09:00:00+00:00", "confirmed_at": "2026-11-02T09:00:02+00:00", "peak_score": 0.8,
        "snapshot_url": snapshot_url, "case_url": case_url}

    wecom = sent["/wecom"]
    assert wecom["query"] == {"key": ["abc"]} and wecom["body"]["msgtype"] == "markdown"
    content = wecom["body"]["markdown"]["content"]
    for expected in ("吸烟告警", "lobby", "unit-a", "2026-11-02 17:00:02", f"[查看抓拍]({snapshot_url})", f"({case_url})"):
        assert expected in content, expected

    ding = sent["/ding"]
    assert ding["body"]["msgtype"] == "markdown" and "吸烟告警" in ding["body"]["markdown"]["title"]
    assert "2026-11-02 17:00:02" in ding["body"]["markdown"]["text"] and snapshot_url in ding["body"]["markdown"]["text"]
    timestamp, sign = ding["query"]["timestamp"][0], ding["query"]["sign"][0]
    assert ding["query"]["access_token"] == ["tok"] and abs(int(timestamp) - time.time() * 1000) < 60_000
    expected_sign = base64.b64encode(hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()).decode()
    assert sign == expected_sign


@SQLITE_ONLY
def test_retries_after_two_500s(world, receiver):
    receiver.plan = [500, 500, 200]
    settings = settings_for(receiver, targets=[AlertTarget(name="hook", type="webhook", url=f"{receiver.url}/hook")], first_retry_s=0.05)
    dispatcher = AlertDispatcher(world.database, settings, poll_s=0.05)
    dispatcher.start()
    try:
        dispatcher.case_opened(world.case_ids["ev-hall"])
        wait_for(lambda: deliveries(world.database)[0].status == "sent", 10, "the third attempt")
    finally:
        dispatcher.stop()
    delivery = deliveries(world.database)[0]
    assert (delivery.attempts, delivery.next_attempt_at) == (3, None) and "HTTP 500" in delivery.last_error
    assert len(receiver.requests) == 3


def test_backoff_doubles_then_fails():
    settings = AlertSettings(max_attempts=5, first_retry_s=2)
    delivery = AlertDelivery(status="pending", attempts=0, last_error="")
    start, waits = utcnow(), []
    for _ in range(4):
        record_attempt(delivery, settings, "HTTP 500", start)
        assert delivery.status == "pending" and delivery.next_attempt_at is not None
        waits.append((delivery.next_attempt_at - start) / timedelta(seconds=1))
    assert waits == [2, 4, 8, 16]
    record_attempt(delivery, settings, "HTTP 500", start)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 5, None)


@SQLITE_ONLY
def test_hanging_receiver_blocks_neither_monitor_nor_api_and_failures_can_be_retried(world, receiver, tmp_path):
    receiver.plan = ["hang"]
    settings = settings_for(receiver, targets=[AlertTarget(name="hook", type="webhook", url=f"{receiver.url}/hook")], timeout_s=3.0,
                            max_attempts=1)
    dispatcher = AlertDispatcher(world.database, settings, poll_s=0.05)
    world.app.state.alerts = dispatcher
    dispatcher.start()
    # No room for evidence: the monitor opens the case, skips the snapshots and announces the case at once.
    store = EvidenceStore(tmp_path / "full", min_free_mb=10**9)
    monitor = Monitor(AppConfig(cameras=[CameraConfig(id="lobby", site="unit-a", source="lobby.mp4")]), world.database, store,
                      SimpleNamespace(version="test", settings=DetectorSettings()), Metrics(storage_bytes=store.used_bytes),  # type: ignore[arg-type]
                      on_case_opened=dispatcher.case_opened)
    update = SimpleNamespace(event_id="ev-alert", track_id=7, start_t=1.0, peak_score=0.9)
    frame = SimpleNamespace(camera_id="lobby", t=3.0, wallclock=utcnow(), image=None)
    try:
        began = time.monotonic()
        monitor._open_event(update, frame, None, None)  # type: ignore[arg-type]
        assert time.monotonic() - began < 1.5  # well under the 3 s the delivery hangs
        wait_for(lambda: bool(receiver.requests), 5, "the alert to reach the receiver")
        began = time.monotonic()
        second = SimpleNamespace(event_id="ev-alert-2", track_id=8, start_t=1.0, peak_score=0.9)
        monitor._open_event(second, frame, None, None)  # type: ignore[arg-type]
        assert time.monotonic() - began < 1.5  # while the first delivery is still hanging
        wait_for(lambda: len([d for d in deliveries(world.database) if d.status == "failed"]) >= 1, 15, "the timeout")
    finally:
        receiver.release.set()
    failed = next(d for d in deliveries(world.database) if d.status == "failed")
    assert "timed out" in failed.last_error and failed.attempts == 1

    supervisor = world.client("supervisor-a")
    listed = supervisor.get("/api/alerts/deliveries", params={"status": "failed"}).json()
    assert failed.id in [d["id"] for d in listed["items"]] and all(d["status"] == "failed" for d in listed["items"])
    assert "timed out" in listed["items"][-1]["last_error"]
    assert world.client("supervisor-all").get("/api/alerts/deliveries", params={"status": "failed"}).json()["total"] == listed["total"]
    assert world.client("inspector-a").get("/api/alerts/deliveries").status_code == 403
    assert world.client("inspector-b").post(f"/api/alerts/deliveries/{failed.id}/retry").status_code == 403
    assert supervisor.get("/api/alerts/deliveries", params={"status": "lost"}).status_code == 422

    retried = supervisor.post(f"/api/alerts/deliveries/{failed.id}/retry")
    assert retried.status_code == 200 and (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    try:
        wait_for(lambda: all(d.status == "sent" for d in deliveries(world.database) if d.id == failed.id), 5, "the retry")
    finally:
        dispatcher.stop()
    with world.database.session() as session:
        assert session.scalar(select(AuditEntry.target_id).where(AuditEntry.action == "alert_retry_requested")) == str(failed.id)
    assert supervisor.post("/api/alerts/deliveries/999999/retry").status_code == 404


@SQLITE_ONLY
def test_deliveries_are_scoped(world, receiver):
    dispatcher = AlertDispatcher(world.database, settings_for(receiver, targets=[
        AlertTarget(name="hook", type="webhook", url=f"{receiver.url}/hook")]))
    dispatcher.case_opened(world.case_ids["ev-stairs"])  # unit-b
    stairs = deliveries(world.database)[0]
    assert world.client("supervisor-a").get("/api/alerts/deliveries").json()["total"] == 0
    with world.database.session() as session:
        row = session.get(AlertDelivery, stairs.id)
        assert row is not None
        row.status = "failed"
    assert world.client("supervisor-a").post(f"/api/alerts/deliveries/{stairs.id}/retry").status_code == 404
    assert world.client("supervisor-all").get("/api/alerts/deliveries").json()["total"] == 1
    assert world.client("supervisor-all").post(f"/api/alerts/deliveries/{stairs.id}/retry").status_code == 200
    assert world.client("supervisor-all").post(f"/api/alerts/deliveries/{stairs.id}/retry").status_code == 409  # already pending


def test_pending_deliveries_resume_after_restart(world, receiver):
    settings = settings_for(receiver, targets=[AlertTarget(name="hook", type="webhook", url=f"{receiver.url}/hook")])
    AlertDispatcher(world.database, settings).case_opened(world.case_ids["ev-lobby"])  # queued, then the process "dies"
    world.database.dispose()
    restarted = Database(world.database.url)
    dispatcher = AlertDispatcher(restarted, settings, poll_s=0.05)
    dispatcher.start()
    try:
        wait_for(lambda: deliveries(restarted)[0].status == "sent", 10, "the resumed delivery")
    finally:
        dispatcher.stop()
        restarted.dispose()
    assert [r["body"]["case_id"] for r in receiver.requests] == [world.case_ids["ev-lobby"]]


def test_alert_config_is_checked():
    from service.config import ConfigError, parse_config

    good = {"url": "https://oapi.dingtalk.com/robot/send?access_token=x", "type": "dingtalk"}
    with pytest.raises(ConfigError, match="used twice"):
        parse_config({"alerts": {"targets": [{"name": "a", **good}, {"name": "a", **good}]}})
    with pytest.raises(ConfigError, match="http:// or https://"):
        parse_config({"alerts": {"targets": [{"name": "a", **good, "url": "ftp://x"}]}})
    with pytest.raises(ConfigError, match=r"alerts.targets.0.type"):
        parse_config({"alerts": {"targets": [{"name": "a", **good, "type": "sms"}]}})
    with pytest.raises(ConfigError, match="unknown field"):
        parse_config({"statistics": {"quarterly_targets": {"persons": 3}}})
