"""The one place the flow is wired: frame → detector → tracker → association → zones → events.

``smokewatch run`` feeds it live camera frames; ``smokewatch evaluate videos`` feeds it
file frames and collects what it emits. Neither re-implements a step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np

from detector import Detections, Detector, FrameEvidence, PersonTracker, associate
from service.config import AppConfig, CameraConfig
from service.events import UNATTACHED_TRACK, EventTracker, EventUpdate, Observation
from service.zones import ZoneFilter


@dataclass
class AnalyzedFrame:
    """A decoded frame chosen for analysis."""

    camera_id: str
    index: int  # position in the stream's decoded frames
    t: float  # stream time in seconds
    wallclock: datetime
    image: np.ndarray


@dataclass
class FrameResult:
    frame: AnalyzedFrame
    detections: Detections
    evidence: FrameEvidence
    observations: list[Observation]  # after zones and schedule
    updates: list[EventUpdate]
    detector_ms: float
    skipped_by_motion_gate: bool

    @property
    def smoking_score(self) -> float:
        """Highest evidence score that counts in this frame (0 when none)."""
        return max((o.score for o in self.observations), default=0.0)


class MotionGate:
    """Skips the detector on still scenes where the last look found nobody.

    A frame is 'still' when the mean absolute difference of a small grey copy against
    the last analyzed frame is under ``threshold`` grey levels.
    """

    def __init__(self, threshold: float = 2.0, max_skip_s: float = 5.0) -> None:
        self.threshold, self.max_skip_s = threshold, max_skip_s
        self._last: np.ndarray | None = None
        self._last_detect_t = -1e9

    def still(self, image: np.ndarray, t: float) -> bool:
        small = cv2.cvtColor(cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).astype(np.int16)
        previous, self._last = self._last, small
        if previous is None or previous.shape != small.shape or t - self._last_detect_t >= self.max_skip_s:
            return False
        return float(np.abs(small - previous).mean()) < self.threshold

    def detected(self, t: float) -> None:
        self._last_detect_t = t


class CameraPipeline:
    """Analysis state of one camera: its tracker, zones and event logic around the shared detector."""

    def __init__(self, camera: CameraConfig, detector: Detector, config: AppConfig, motion_gate: bool = True) -> None:
        self.camera, self.detector = camera, detector
        self.tracker = PersonTracker(camera.analysis_fps, config.tracker)
        self.association = config.association
        self.zones = ZoneFilter(camera.zones, camera.exempt_zones, camera.events.zone_anchor)
        self.events = EventTracker(camera.events)
        self.motion_gate = MotionGate() if motion_gate else None
        self._people_last_frame = True

    def process(self, frame: AnalyzedFrame) -> FrameResult:
        return process_frames([(self, frame)])[0]

    def _gated(self, frame: AnalyzedFrame) -> bool:
        """Whether the motion gate skips the detector on this frame (a still scene where nobody was)."""
        return (self.motion_gate is not None and not self._people_last_frame and not self.events.busy
                and self.motion_gate.still(frame.image, frame.t))

    def _after_detection(self, frame: AnalyzedFrame, detections: Detections, detector_ms: float, skipped: bool) -> FrameResult:
        if not skipped and self.motion_gate is not None:
            self.motion_gate.detected(frame.t)
        detections = self.tracker.update(detections)
        evidence = associate(detections, self.association)
        self._people_last_frame = bool((detections.class_id == self.detector.person_id).any())
        observations = self._observations(detections, evidence, frame)
        updates = self.events.update(frame.t, observations)
        return FrameResult(frame, detections, evidence, observations, updates, detector_ms, skipped)

    def finish(self, t: float) -> list[EventUpdate]:
        return self.events.finish(t)

    def _observations(self, detections: Detections, evidence: FrameEvidence, frame: AnalyzedFrame) -> list[Observation]:
        if not self.camera.schedule.active(frame.wallclock):
            return []
        size = (frame.image.shape[1], frame.image.shape[0])
        observations = []
        for row in np.flatnonzero((detections.class_id == self.detector.person_id) & (detections.tracker_id >= 0)):
            box = tuple(float(v) for v in detections.xyxy[row])
            if not self.zones.counts(box, size):  # type: ignore[arg-type]
                continue
            best = evidence.best_for(int(row))
            observations.append(Observation(int(detections.tracker_id[row]), box, best.score if best else 0.0))  # type: ignore[arg-type]
        counted = [(box, score) for box, score in evidence.unattached if self.zones.counts(box, size)]
        if counted:
            box, score = max(counted, key=lambda item: item[1])
            observations.append(Observation(UNATTACHED_TRACK, box, score))
        return observations


def process_frames(items: list[tuple[CameraPipeline, AnalyzedFrame]]) -> list[FrameResult]:
    """Analyze one frame from each of several cameras, in order of ``items``.

    The frames the motion gates let through go to the shared detector as one batch.
    Each camera appears at most once, since its frames must be analyzed in order.
    """
    wanted = [index for index, (pipeline, frame) in enumerate(items) if not pipeline._gated(frame)]
    detections: dict[int, Detections] = {}
    detector_ms = 0.0
    if wanted:
        detector = items[wanted[0]][0].detector
        started = time.perf_counter()
        found = detector.detect_batch([items[index][1].image for index in wanted])
        detector_ms = (time.perf_counter() - started) * 1000 / len(wanted)  # each frame's share of the batch
        detections = dict(zip(wanted, found, strict=True))
    return [pipeline._after_detection(frame, detections[index], detector_ms, skipped=False) if index in detections
            else pipeline._after_detection(frame, Detections.empty(pipeline.detector.names), 0.0, skipped=True)
            for index, (pipeline, frame) in enumerate(items)]
