"""The main job end to end: real cameras (RTSP server, files), the real model, database and evidence folder."""

from __future__ import annotations

import json
import logging
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import select

from detector import Detector
from service.alerts import AlertDispatcher
from service.config import AlertSettings, AlertTarget, AppConfig, CameraConfig, EventSettings
from service.db.models import Camera, Case, Event, EvidenceFile
from service.db.session import Database
from service.events import UNATTACHED_TRACK
from service.evidence import EvidenceStore, sha256_file
from service.metrics import Metrics
from service.monitor import Monitor
from service.readers import ClipRecording, VideoSource
from tests.support.fixtures import wait_for

SMOKING_CLIP = "puffkiten_test.mp4"  # a lit cigarette between fingers for the whole 9.4 s: one smoker, one episode
EMPTY_SCENE = "neg03_hall_transit-hall-overhead.mp4"


@pytest.fixture(scope="module")
def detector() -> Detector:
    detector = Detector()
    detector.warmup()
    return detector


def smoker_then_empty_scene(videos: Path, target: Path, tail_s: float = 14.0) -> Path:
    """The smoking clip, then ``tail_s`` of a still frame with nobody in it: a smoker passes, the camera goes on."""
    with av.open(str(videos / SMOKING_CLIP)) as source:
        frames = [f.to_ndarray(format="bgr24") for f in source.decode(video=0)]
        fps = round(float(source.streams.video[0].average_rate or 25))
    height, width = frames[0].shape[:2]
    with av.open(str(videos / EMPTY_SCENE)) as empty:
        still = next(empty.decode(video=0)).reformat(width=width, height=height, format="bgr24").to_ndarray()
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps, 1), options={"preset": "veryfast", "g": str(fps)})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, image in enumerate(frames + [still] * int(tail_s * fps)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint8), format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target


def make_monitor(cameras: list[CameraConfig], database_url: str, root: Path, detector: Detector, min_free_mb: int = 0,
                 on_case_opened=None, analysis_threads: int | None = None):
    database = Database(database_url)
    store = EvidenceStore(root, min_free_mb)
    monitor = Monitor(AppConfig(cameras=cameras, analysis_threads=analysis_threads), database, store, detector,
                      Metrics(storage_bytes=store.used_bytes), on_case_opened=on_case_opened)
    return monitor, database, store


def assert_evidence_verifies(store: EvidenceStore, event: Event) -> None:
    folder = store.root / event.evidence_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["event_id"] == event.id and manifest["model_version"] == event.model_version
    # what the detector saw and kept, so a reviewer can reproduce the detection
    assert {"person_conf", "cigarette_conf", "iou", "imgsz", "border", "mirror", "extra_sizes", "fusion",
            "second_look"} <= set(manifest["thresholds"])
    assert {f["kind"] for f in manifest["files"]} >= {"clip", "snapshot", "snapshot_annotated"}
    for entry in manifest["files"]:
        assert sha256_file(folder / entry["name"]) == entry["sha256"], entry["name"]
    with av.open(str(folder / "clip.mp4")) as clip:
        stream = clip.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        decoded = sum(1 for _ in clip.decode(stream))
        assert decoded > 25 and float(clip.duration or 0) / 1e6 > 5.0
    with (folder / "clip.mp4").open("rb") as handle:  # faststart: the index (moov) comes before the media (mdat)
        head = handle.read(4096)
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


@pytest.mark.slow
def test_rtsp_camera_watching_a_smoker_opens_one_case_with_verified_evidence(
        rtsp_server, shared_videos, tmp_path, detector, database_url, receiver, caplog):
    caplog.set_level(logging.INFO, logger="smokewatch")
    video = smoker_then_empty_scene(shared_videos, tmp_path / "camera.mp4")
    server = rtsp_server(video)
    camera = CameraConfig(id="lobby-1", name="1F lobby", source=server.url, open_timeout_s=10, read_timeout_s=5)
    alerts = AlertSettings(public_url="http://smokewatch.test", targets=[AlertTarget(name="duty", type="webhook", url=receiver.url)])
    dispatcher = AlertDispatcher(Database(database_url), alerts, poll_s=0.2)
    monitor, database, store = make_monitor([camera], database_url, tmp_path / "evidence", detector,
                                            on_case_opened=dispatcher.case_opened)
    dispatcher.start()
    monitor.start()
    try:
        with database.session() as session:
            wait_for(lambda: session.scalar(select(Event).where(Event.status == "complete")) is not None, 90, "a complete event")
        wait_for(lambda: bool(receiver.requests), 20, "the case-opened alert")
    finally:
        monitor.stop()
        dispatcher.stop()
    alert = receiver.requests[0]["body"]
    assert alert["event"] == "case_opened" and alert["camera"]["id"] == "lobby-1" and alert["snapshot_url"].startswith("http://smokewatch.test")
    with database.session() as session:
        events = list(session.scalars(select(Event)))
        cases = list(session.scalars(select(Case)))
        assert len(events) == 1 and len(cases) == 1, [(e.track_id, e.started_at, e.status) for e in events]
        assert cases[0].state == "pending_review" and cases[0].event_id == events[0].id
        assert events[0].status == "complete" and events[0].ended_at is not None
        # the log tells the officer whether a person was seen with the cigarette, in words rather than an id
        who = ("a cigarette with no person box" if events[0].track_id == UNATTACHED_TRACK
               else f"person track {events[0].track_id}")
        assert f"on camera lobby-1 ({who}, score" in caplog.text
        assert_evidence_verifies(store, events[0])
        kinds = {f.kind for f in session.scalars(select(EvidenceFile).where(EvidenceFile.event_id == events[0].id))}
        assert kinds == {"clip", "snapshot", "snapshot_annotated", "manifest"}
        assert session.get(Camera, "lobby-1").status in {"online", "offline"}
    database.dispose()


@pytest.mark.slow
def test_several_analysis_threads_open_one_case_per_smoking_camera(shared_videos, tmp_path, detector):
    """Three threads share four cameras: each camera still gets its frames in order and exactly one case."""
    video = smoker_then_empty_scene(shared_videos, tmp_path / "camera.mp4", tail_s=8.0)
    cameras = [CameraConfig(id=f"cam{i}", source=str(video), realtime=False) for i in range(3)]
    cameras.append(CameraConfig(id="empty", source=str(shared_videos / EMPTY_SCENE), realtime=False))
    monitor, database, store = make_monitor(cameras, f"sqlite:///{tmp_path}/db.sqlite", tmp_path / "evidence", detector,
                                            analysis_threads=3)
    monitor.start()
    assert monitor.wait_until_idle(300)
    monitor.stop()
    with database.session() as session:
        events = list(session.scalars(select(Event)))
        assert sorted(e.camera_id for e in events) == ["cam0", "cam1", "cam2"]
        assert len(session.scalars(select(Case)).all()) == 3
        for event in events:
            assert event.status == "complete"
            assert_evidence_verifies(store, event)
    database.dispose()


@pytest.mark.slow
def test_non_smoking_clip_opens_no_case(shared_videos, tmp_path, detector):
    camera = CameraConfig(id="hall", source=str(shared_videos / "neg07_corridor_surv-corridorA_7clips.mp4"), realtime=False)
    monitor, database, _ = make_monitor([camera], f"sqlite:///{tmp_path}/db.sqlite", tmp_path / "evidence", detector)
    monitor.start()
    assert monitor.wait_until_idle(120)
    monitor.stop()
    with database.session() as session:
        assert session.scalars(select(Case)).all() == []
        assert session.get(Camera, "hall").status == "ended"
    analyzed = monitor.metrics.frames_analyzed.labels("hall")._value.get()  # noqa: SLF001
    assert analyzed > 50
    database.dispose()


@pytest.mark.slow
def test_camera_killed_mid_stream_goes_offline_then_online_and_loses_nothing(rtsp_server, make_video, tmp_path, detector):
    server = rtsp_server(make_video(tmp_path / "loop.mp4", seconds=4), loop=True)
    camera = CameraConfig(id="stairs", source=server.url, open_timeout_s=3, read_timeout_s=2, max_backoff_s=2)
    unreachable = CameraConfig(id="dead", source="rtsp://127.0.0.1:9/none", open_timeout_s=1, read_timeout_s=1, max_backoff_s=1)
    monitor, database, _ = make_monitor([camera, unreachable], f"sqlite:///{tmp_path}/db.sqlite", tmp_path / "evidence", detector)
    with database.session() as session:  # a case already in the queue must survive everything below
        session.add(Camera(id="stairs", name="stairs"))
        session.add(Case(camera_id="stairs", state="pending_review"))

    def status(camera_id: str) -> str:
        with database.session() as session:
            return session.get(Camera, camera_id).status

    monitor.start()
    try:
        wait_for(lambda: status("stairs") == "online", 30, "camera online")
        wait_for(lambda: status("dead") == "offline", 10, "unreachable camera offline")  # and it held nobody up
        server.stop()
        started = time.monotonic()
        wait_for(lambda: status("stairs") == "offline", 20, "camera offline after the server died")
        assert time.monotonic() - started < 15  # read timeout, not OpenCV's 30 s per read
        server.restart()
        wait_for(lambda: status("stairs") == "online", 30, "camera online again")
    finally:
        monitor.stop()
    with database.session() as session:
        changes = [c.status for c in session.get(Camera, "stairs").status_changes]
        assert changes[:3] == ["online", "offline", "online"]
        assert len(session.scalars(select(Case)).all()) == 1
    assert monitor.metrics.reconnects.labels("stairs")._value.get() >= 1  # noqa: SLF001
    database.dispose()


def test_restart_after_a_crash_finishes_the_unfinished_event(make_video, tmp_path, detector):
    monitor, database, store = make_monitor([], f"sqlite:///{tmp_path}/db.sqlite", tmp_path / "evidence", detector)
    from datetime import UTC, datetime

    folder = store.event_dir("cam", "crashed", datetime(2026, 11, 2, tzinfo=UTC))
    source = VideoSource(CameraConfig(id="cam", source=str(make_video(tmp_path / "in.mp4", seconds=8)), realtime=False))
    recording = ClipRecording(folder / "clip.partial.mp4", 0.0, 99.0, on_done=lambda r: None)
    source.record(recording)
    frames = source.frames()
    for frame in frames:
        if frame.t >= 6.0:
            break
    recording._container = None  # noqa: SLF001 - the process died: the writer was never closed
    frames.close()
    with database.session() as session:
        session.add(Camera(id="cam"))
        from service import cases

        cases.open_event(session, Event(
            id="crashed", camera_id="cam", track_id=3, started_at=datetime(2026, 11, 2, tzinfo=UTC),
            confirmed_at=datetime(2026, 11, 2, tzinfo=UTC), peak_score=0.7, status="recording",
            evidence_dir=folder.relative_to(store.root).as_posix(), model_version="m", thresholds={}))
    monitor.recover()
    with database.session() as session:
        event = session.get(Event, "crashed")
        assert event.status == "incomplete" and "stopped while" in event.status_detail
        assert session.scalar(select(Case).where(Case.event_id == "crashed")).state == "pending_review"
    with av.open(str(folder / "clip.mp4")) as clip:
        assert sum(1 for _ in clip.decode(video=0)) >= 100  # the fragments written before the crash
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"
    assert all(sha256_file(folder / f["name"]) == f["sha256"] for f in manifest["files"])
    database.dispose()


@pytest.mark.slow
def test_full_evidence_folder_still_opens_the_case_and_says_why(shared_videos, tmp_path, detector):
    camera = CameraConfig(id="cam", source=str(shared_videos / SMOKING_CLIP), realtime=False,
                          events=EventSettings(min_hits=3, window_frames=10, min_duration_s=1.0))
    monitor, database, _ = make_monitor([camera], f"sqlite:///{tmp_path}/db.sqlite", tmp_path / "evidence", detector,
                                        min_free_mb=10**9)
    monitor.start()
    assert monitor.wait_until_idle(120)
    monitor.stop()
    with database.session() as session:
        events = session.scalars(select(Event)).all()
        assert events and all(e.status == "evidence_failed" and "below min_free_mb" in e.status_detail for e in events)
        assert len(session.scalars(select(Case)).all()) == len(events)
    database.dispose()
