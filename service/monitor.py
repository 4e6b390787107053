"""The main job: cameras → pipeline → evidence → case queue, running until stopped."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from detector import Detector
from service import cases
from service.config import AppConfig, CameraConfig, redact_source
from service.db.models import Event, utcnow
from service.db.session import Database
from service.events import UNATTACHED_TRACK, EventUpdate
from service.evidence import FILE_NAMES, PARTIAL_CLIP, SNAPSHOT, SNAPSHOT_ANNOTATED, EvidenceStore, StorageError, annotate
from service.metrics import Metrics
from service.pipeline import AnalyzedFrame, CameraPipeline, FrameResult, process_frames
from service.readers import CameraReader, ClipRecording, VideoSource

log = logging.getLogger("smokewatch")


def analysis_threads(config: AppConfig) -> int:
    """Analysis threads: as configured, else one per two cores (one inference of a nano model
    uses two threads well; more threads per call scale worse than more calls side by side)."""
    return config.analysis_threads or max(1, (os.cpu_count() or 1) // 2)


def service_detector(config: AppConfig) -> Detector:
    """The detector as the service runs it: unless ``detector.threads`` is set, the cores are shared
    out among the analysis threads, so inferences running side by side do not oversubscribe the CPU."""
    settings = config.detector
    if "threads" not in settings.model_fields_set:
        settings = settings.model_copy(update={"threads": max(1, (os.cpu_count() or 1) // analysis_threads(config))})
    return Detector(settings)


@dataclass
class _OpenEvent:
    event_id: str
    camera: CameraConfig
    folder: Path
    start_t: float
    started_at: datetime
    recording: ClipRecording | None
    source: VideoSource
    ended_at: datetime | None = None
    peak: float = 0.0


@dataclass
class _CameraSlot:
    """What waits for analysis, in arrival order: frames (the newest few, see ``analysis_backlog_s``) and ends of
    stream, which close the connection whose frames came before them."""

    backlog: int  # most frames waiting; the oldest waiting frame gives way to a new one
    queue: deque[tuple[AnalyzedFrame, VideoSource] | None] = field(default_factory=deque)  # None: end of stream
    pipeline: CameraPipeline | None = None
    source: VideoSource | None = None
    last_t: float = 0.0
    busy: bool = False  # an analysis thread holds this camera, so its frames stay in order

    def waiting_frames(self) -> int:
        return sum(item is not None for item in self.queue)

    def drop_oldest_frame(self) -> None:
        for item in self.queue:
            if item is not None:
                self.queue.remove(item)
                return

    def end_stream(self) -> None:
        """Queue an end of stream, unless nothing is left to end."""
        if self.queue and self.queue[-1] is None:
            return
        if self.queue or self.busy or self.pipeline is not None:
            self.queue.append(None)


class Monitor:
    """Runs every enabled camera; analysis threads share the detector among them.

    Each analysis thread takes the cameras whose waiting frames are oldest among those no other
    thread holds (up to the detector's ``max_batch``), one frame each, and runs them through the
    detector as one batch; a camera is held by one thread at a time, so its frames stay in order.
    """

    def __init__(self, config: AppConfig, db: Database, store: EvidenceStore, detector: Detector, metrics: Metrics,
                 on_case_opened: Callable[[int], None] | None = None) -> None:
        self.config, self.db, self.store, self.detector, self.metrics = config, db, store, detector, metrics
        self.on_case_opened = on_case_opened  # called with the case id once the case and its snapshots are stored
        self.cameras = {c.id: c for c in config.cameras if c.enabled}
        self.readers: dict[str, CameraReader] = {}
        self._slots = {camera_id: _CameraSlot(backlog=max(1, round(config.analysis_backlog_s * camera.analysis_fps)))
                       for camera_id, camera in self.cameras.items()}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._open: dict[str, _OpenEvent] = {}
        self._finishing: queue.Queue[tuple[_OpenEvent, ClipRecording | None] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.storage_error: str | None = None

    # --- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        with self.db.session() as session:
            cases.sync_cameras(session, list(self.cameras.values()))
        self.recover()
        self.check_storage()
        workers = [(f"analysis-{i}", self._analysis_loop) for i in range(analysis_threads(self.config))]
        for name, target in [*workers, ("evidence", self._evidence_loop)]:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.metrics.count_frames_read(lambda: {camera_id: r.frames_read for camera_id, r in self.readers.items()})
        for camera in self.cameras.values():
            ring = camera.evidence.pre_roll_s + 10.0
            reader = CameraReader(camera, self._on_frame, self._on_status, ring)
            self.readers[camera.id] = reader
            reader.start()
            log.info("watching camera %s (%s) at %s fps", camera.id, camera.name or redact_source(camera.source), camera.analysis_fps)

    def stop(self, timeout: float = 30.0) -> None:
        for reader in self.readers.values():
            reader.stop()
        for reader in self.readers.values():
            reader.join(timeout)
        self._drain(timeout)
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self._finishing.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _drain(self, timeout: float) -> None:
        """Let the analysis thread finish every camera's last frames and events before stopping."""
        with self._wake:
            for slot in self._slots.values():
                slot.end_stream()
            self._wake.notify_all()
            self._wake.wait_for(self._slots_drained, timeout)

    def wait_until_idle(self, timeout: float) -> bool:
        """True once every reader has stopped and every event's evidence is written (for files and tests)."""
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        for reader in self.readers.values():
            reader.join(max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        with self._wake:
            self._wake.wait_for(self._slots_drained, max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        while datetime.now(UTC) < deadline:
            if not self._open and self._finishing.unfinished_tasks == 0:
                return True
            self._stop.wait(0.1)
        return False

    def _slots_drained(self) -> bool:
        """No camera has a frame waiting or an end of stream still to handle."""
        return all(not s.queue and not s.busy for s in self._slots.values())

    def finished(self) -> bool:
        """True when every camera is a file that has been read to its end and all evidence is written."""
        return (all(not reader.is_alive() for reader in self.readers.values())
                and self._slots_drained()
                and not self._open and self._finishing.unfinished_tasks == 0)

    def check_storage(self) -> None:
        try:
            self.store.check_writable()
            self.storage_error = None
        except StorageError as error:
            if self.storage_error != str(error):
                log.error("%s: events will still be recorded, but without evidence files until this is fixed", error)
            self.storage_error = str(error)

    def recover(self) -> None:
        """Events left 'recording' by a crash: finish their clip from the partial file, or mark them incomplete."""
        with self.db.session() as session:
            for event in cases.unfinished_events(session):
                folder = self.store.root / event.evidence_dir
                detail = "the service stopped while this event was being recorded"
                try:
                    self.store.leftover_temporaries(folder)
                    files = self.store.finish_clip(folder)
                    files += [self.store.stored(kind, folder / FILE_NAMES[kind]) for kind in (SNAPSHOT, SNAPSHOT_ANNOTATED)
                              if (folder / FILE_NAMES[kind]).is_file()]
                    manifest = self._manifest(event, status="incomplete", detail=detail)
                    files.append(self.store.write_manifest(folder, manifest, files))
                    cases.add_files(session, event.id, files)
                except Exception as error:  # a damaged partial clip must not stop start-up
                    detail += f"; clip could not be recovered: {error}"
                cases.set_event_status(session, event.id, "incomplete", detail)
                log.warning("event %s on camera %s marked incomplete: %s", event.id, event.camera_id, detail)

    # --- readers ----------------------------------------------------------------------------------------------
    def _on_frame(self, frame: AnalyzedFrame, source: VideoSource) -> None:
        slot = self._slots[frame.camera_id]
        camera = self.cameras[frame.camera_id]
        with self._wake:
            if camera.is_file and not camera.realtime:
                # A file read as fast as possible waits for the analysis instead of dropping frames.
                self._wake.wait_for(lambda: slot.waiting_frames() < slot.backlog or self._stop.is_set())
            if slot.waiting_frames() >= slot.backlog:
                slot.drop_oldest_frame()
                self.metrics.frames_dropped.labels(frame.camera_id).inc()
            slot.queue.append((frame, source))
            self._wake.notify_all()

    def _on_status(self, camera_id: str, status: str, reason: str) -> None:
        level = logging.INFO if status == "online" else logging.WARNING
        log.log(level, "camera %s %s", camera_id, {"online": f"connected to {reason}", "offline": f"offline: {reason}",
                                                  "ended": f"finished: {reason}"}[status])
        self.metrics.camera_up.labels(camera_id).set(1 if status == "online" else 0)
        if status == "offline":
            self.metrics.reconnects.labels(camera_id).inc()
        with self.db.session() as session:
            cases.record_status(session, camera_id, status, reason)
        if status != "online":
            with self._wake:
                self._slots[camera_id].end_stream()
                self._wake.notify_all()

    # --- analysis ---------------------------------------------------------------------------------------------
    def _analysis_loop(self) -> None:
        def ready() -> list[tuple[str, _CameraSlot]]:
            return [(camera_id, s) for camera_id, s in self._slots.items() if s.queue and not s.busy]

        def waited_since(slot: _CameraSlot) -> datetime:
            head = slot.queue[0]
            return head[0].wallclock if head is not None else datetime.min.replace(tzinfo=UTC)  # ends go first

        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stop.is_set() or bool(ready()))
                if self._stop.is_set():
                    return
                # The cameras waiting longest, one item each; their frames are analyzed as one detector batch.
                taken = sorted(ready(), key=lambda item: waited_since(item[1]))[: self.detector.settings.max_batch]
                work = [(camera_id, slot, slot.queue.popleft()) for camera_id, slot in taken]
                for _, slot, _ in work:
                    slot.busy = True
            try:
                batch = []
                for camera_id, slot, item in work:
                    if item is None:  # the end of the connection whose frames came before it
                        self._finish_camera(camera_id, slot)
                        continue
                    frame, source = item
                    if slot.source is not source:  # a new connection: stream time restarts, so does the analysis state
                        self._finish_camera(camera_id, slot)
                        slot.pipeline, slot.source = CameraPipeline(self.cameras[camera_id], self.detector, self.config), source
                    batch.append((slot, frame, source))
                if batch:
                    self._analyze(batch)
            finally:
                with self._wake:
                    for _, slot, _ in work:
                        slot.busy = False
                    self._wake.notify_all()

    def _analyze(self, batch: list[tuple[_CameraSlot, AnalyzedFrame, VideoSource]]) -> None:
        items = []
        for slot, frame, _ in batch:
            assert slot.pipeline is not None, "a camera's pipeline is made before its first frame is analyzed"
            items.append((slot.pipeline, frame))
        try:
            results = process_frames(items)
        except Exception:
            log.exception("analysis failed on %s; frames skipped",
                          ", ".join(f"camera {frame.camera_id} at {frame.t:.1f} s" for _, frame, _ in batch))
            return
        for (slot, frame, source), result in zip(batch, results, strict=True):
            slot.last_t = frame.t
            self.metrics.frames_analyzed.labels(frame.camera_id).inc()
            if result.skipped_by_motion_gate:
                self.metrics.frames_skipped.labels(frame.camera_id).inc()
            else:
                self.metrics.detector_seconds.observe(result.detector_ms / 1000)
            for update in result.updates:
                self._handle(update, frame, source, result)

    def _finish_camera(self, camera_id: str, slot: _CameraSlot) -> None:
        if slot.pipeline is not None and slot.source is not None:
            for update in slot.pipeline.finish(slot.last_t):
                self._handle(update, None, slot.source, None)
        slot.pipeline, slot.source = None, None

    def _handle(self, update: EventUpdate, frame: AnalyzedFrame | None, source: VideoSource, result: FrameResult | None) -> None:
        if update.kind == "confirmed" and frame is not None and result is not None:
            self._open_event(update, frame, source, result)
            return
        open_event = self._open.get(update.event_id)
        if open_event is None:
            return
        open_event.peak = max(open_event.peak, update.peak_score)
        if update.kind == "ended":
            end_t = update.end_t if update.end_t is not None else update.t
            open_event.ended_at = open_event.started_at + timedelta(seconds=end_t - open_event.start_t)
            camera = open_event.camera
            stop_t = min(end_t + camera.evidence.post_roll_s, open_event.start_t - camera.evidence.pre_roll_s + camera.evidence.max_clip_s)
            log.info("smoking event %s on camera %s ended after %.1f s", update.event_id, camera.id, end_t - open_event.start_t)
            if open_event.recording is not None:
                source.set_stop(open_event.recording, stop_t)
            else:
                self._finishing.put((open_event, None))

    def _open_event(self, update: EventUpdate, frame: AnalyzedFrame, source: VideoSource, result: FrameResult) -> None:
        camera = self.cameras[frame.camera_id]
        started_at = frame.wallclock - timedelta(seconds=frame.t - update.start_t)
        folder = self.store.event_dir(camera.id, update.event_id, started_at)
        event = Event(
            id=update.event_id, camera_id=camera.id, track_id=update.track_id, started_at=started_at,
            confirmed_at=frame.wallclock, peak_score=update.peak_score, status="recording",
            evidence_dir=folder.relative_to(self.store.root).as_posix(), model_version=self.detector.version,
            thresholds=self._thresholds(camera),
        )
        with self.db.session() as session:
            case = cases.open_event(session, event)
        self.metrics.events.labels(camera.id).inc()
        who = "a cigarette with no person box" if update.track_id == UNATTACHED_TRACK else f"person track {update.track_id}"
        log.info("smoking confirmed on camera %s (%s, score %.2f): case %d opened", camera.id, who, update.peak_score,
                 case.id)
        open_event = _OpenEvent(update.event_id, camera, folder, update.start_t, started_at, None, source, peak=update.peak_score)
        self._open[update.event_id] = open_event
        try:
            self._start_evidence(open_event, update, frame, source, result)
        finally:
            # After the snapshots, so that alerts can link to them.
            self._announce_case(case.id)

    def _announce_case(self, case_id: int) -> None:
        if self.on_case_opened is None:
            return
        try:
            self.on_case_opened(case_id)
        except Exception:  # an alert problem must not stop detection
            log.exception("case %d: the case-opened callback failed", case_id)

    def _start_evidence(self, open_event: _OpenEvent, update: EventUpdate, frame: AnalyzedFrame, source: VideoSource,
                        result: FrameResult) -> None:
        camera, folder = open_event.camera, open_event.folder
        self.check_storage()
        if self.storage_error is not None:
            self._set_status(update.event_id, "evidence_failed", self.storage_error)
            return
        try:
            caption = f"{camera.id} {frame.wallclock.strftime('%Y-%m-%d %H:%M:%S UTC')} smoking {update.peak_score:.2f}"
            files = self.store.write_snapshots(folder, frame.image, annotate(frame.image, result.detections, result.evidence, caption))
            with self.db.session() as session:
                cases.add_files(session, update.event_id, files)
        except OSError as error:
            self._set_status(update.event_id, "evidence_failed", f"cannot write snapshots in {folder}: {error}")
            return
        recording = ClipRecording(folder / PARTIAL_CLIP, update.start_t - camera.evidence.pre_roll_s,
                                  update.start_t - camera.evidence.pre_roll_s + camera.evidence.max_clip_s,
                                  on_done=partial(self._clip_done, open_event))
        open_event.recording = recording
        source.record(recording)

    def _clip_done(self, open_event: _OpenEvent, recording: ClipRecording) -> None:
        self._finishing.put((open_event, recording))

    def _set_status(self, event_id: str, status: str, detail: str) -> None:
        log.error("event %s: %s", event_id, detail)
        with self.db.session() as session:
            cases.set_event_status(session, event_id, status, detail)
        self._open.pop(event_id, None)

    # --- evidence ---------------------------------------------------------------------------------------------
    def _evidence_loop(self) -> None:
        while True:
            item = self._finishing.get()
            try:
                if item is None:
                    return
                self._finish_evidence(*item)
            finally:
                self._finishing.task_done()

    def _finish_evidence(self, open_event: _OpenEvent, recording: ClipRecording | None) -> None:
        status, detail = "complete", ""
        if recording is not None and recording.interrupted:
            status, detail = "incomplete", "the camera connection was lost before the clip's end"
        if recording is not None and recording.error:
            status, detail = "incomplete", recording.error
        try:
            files = self.store.finish_clip(open_event.folder)
            with self.db.session() as session:
                event = session.get(Event, open_event.event_id)
                assert event is not None
                event.peak_score = max(event.peak_score, open_event.peak)
                if open_event.ended_at is None and recording is not None and recording.last_t is not None:
                    open_event.ended_at = open_event.started_at + timedelta(seconds=recording.last_t - open_event.start_t)
                event.ended_at = open_event.ended_at
                cases.add_files(session, event.id, files)
                session.flush()
                stored = [self.store.stored(f.kind, self.store.root / f.path) for f in event.files]
                manifest = self.store.write_manifest(open_event.folder, self._manifest(event, status, detail), stored)
                cases.add_files(session, event.id, [manifest])
                cases.set_event_status(session, event.id, status, detail)
            log.info("evidence for event %s saved in %s (%s)", open_event.event_id, open_event.folder, status)
        except Exception as error:  # the event and its case stay in the queue whatever happens to the files
            log.exception("evidence for event %s failed", open_event.event_id)
            with self.db.session() as session:
                cases.set_event_status(session, open_event.event_id, "evidence_failed", f"{type(error).__name__}: {error}")
        finally:
            self._open.pop(open_event.event_id, None)

    def _thresholds(self, camera: CameraConfig) -> dict[str, object]:
        detector = self.detector.settings
        return {"events": camera.events.model_dump(), "person_conf": detector.person_conf,
                "cigarette_conf": detector.cigarette_conf, "iou": detector.iou, "imgsz": detector.imgsz,
                "border": detector.border, "mirror": detector.mirror, "extra_sizes": detector.extra_sizes,
                "fusion": detector.fusion, "second_look": detector.second_look.model_dump()}

    def _manifest(self, event: Event, status: str, detail: str) -> dict[str, object]:
        camera = self.cameras.get(event.camera_id)
        return {
            "schema": "smokewatch.evidence/1", "event_id": event.id, "status": status, "status_detail": detail,
            "camera": camera.model_dump(include={"id", "name", "site", "building", "floor", "location_type"}) if camera else
            {"id": event.camera_id},
            "track_id": event.track_id, "started_at": event.started_at.isoformat(), "confirmed_at": event.confirmed_at.isoformat(),
            "ended_at": event.ended_at.isoformat() if event.ended_at else None, "peak_score": round(event.peak_score, 4),
            "model_version": event.model_version, "thresholds": event.thresholds, "written_at": utcnow().isoformat(),
        }
