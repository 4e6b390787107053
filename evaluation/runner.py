"""Runs labeled videos through the service's own pipeline and records what it saw.

Each video is read by ``service.readers.VideoSource`` and analyzed by
``service.pipeline.CameraPipeline`` exactly as a live camera would be, but as fast as
the machine allows. Per-frame observations are kept, so the threshold sweep re-runs
only the event logic (``service.events.EventTracker``) with other settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from detector import Detector
from evaluation.labels import LabelSet
from evaluation.matching import FrameScore, PredictedEvent, VideoRun
from service.config import AppConfig, CameraConfig, EventSettings
from service.events import EventTracker, EventUpdate, Observation
from service.pipeline import CameraPipeline
from service.readers import SourceError, VideoSource

# Wall-clock of frame 0 for every video: schedules see a fixed, reproducible time.
EVALUATION_EPOCH = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday, 18:00 in Shanghai


@dataclass
class RecordedFrame:
    t: float
    observations: list[Observation]
    score: float
    persons: int  # person boxes detected anywhere in the frame


@dataclass
class RecordedVideo:
    """What the pipeline saw in one video, enough to re-score it."""

    video: str
    duration_s: float = 0.0
    frames: list[RecordedFrame] = field(default_factory=list)
    events: list[PredictedEvent] = field(default_factory=list)
    error: str | None = None

    def as_run(self) -> VideoRun:
        return VideoRun(self.video, self.duration_s, list(self.events),
                        [FrameScore(self.video, f.t, f.score) for f in self.frames], self.error)

    def rescored(self, settings: EventSettings) -> VideoRun:
        """The run the event logic gives with other settings, over the same recorded evidence."""
        tracker = EventTracker(settings)
        updates: list[EventUpdate] = []
        for frame in self.frames:
            updates += tracker.update(frame.t, frame.observations)
        updates += tracker.finish(self.frames[-1].t if self.frames else 0.0)
        return VideoRun(self.video, self.duration_s, events_from_updates(self.video, updates),
                        [FrameScore(self.video, f.t, f.score) for f in self.frames], self.error)


def events_from_updates(video: str, updates: list[EventUpdate]) -> list[PredictedEvent]:
    events: dict[str, PredictedEvent] = {}
    for update in updates:
        if update.kind == "ended" or update.kind == "confirmed":
            end = update.end_t if update.end_t is not None else update.t
            events[update.event_id] = PredictedEvent(video, update.track_id, update.start_t, update.confirmed_t,
                                                     max(end, update.start_t), update.peak_score)
    return sorted(events.values(), key=lambda e: (e.start_s, e.track_id))


def evaluation_camera(template: CameraConfig | None, video: Path) -> CameraConfig:
    """The camera settings a video is evaluated with: the template's, reading the file as fast as possible."""
    camera_id = re.sub(r"[^A-Za-z0-9_-]", "-", video.stem)[:64] or "video"
    base = template or CameraConfig(id=camera_id, source=str(video))
    return base.model_copy(update={"id": camera_id, "source": str(video), "realtime": False, "loop": False})


def record_video(video: Path, camera: CameraConfig, detector: Detector, config: AppConfig, progress: bool = True) -> RecordedVideo:
    recorded = RecordedVideo(video.name)
    pipeline = CameraPipeline(camera, detector, config)
    updates: list[EventUpdate] = []
    bar = tqdm(desc=video.name[:40], unit="frame", leave=False, disable=not progress)
    try:
        for frame in VideoSource(camera, start_wallclock=EVALUATION_EPOCH).frames():
            result = pipeline.process(frame)
            persons = int((result.detections.class_id == detector.person_id).sum())
            recorded.frames.append(RecordedFrame(frame.t, result.observations, result.smoking_score, persons))
            updates += result.updates
            bar.update()
    except SourceError as error:
        recorded.error = str(error)
    finally:
        bar.close()
    last_t = recorded.frames[-1].t if recorded.frames else 0.0
    step = 1.0 / camera.analysis_fps
    recorded.duration_s = last_t + step if recorded.frames else 0.0
    updates += pipeline.finish(last_t)
    recorded.events = events_from_updates(video.name, updates)
    return recorded


def record_videos(videos: list[Path], template: CameraConfig | None, detector: Detector, config: AppConfig,
                  progress: bool = True) -> list[RecordedVideo]:
    """Every video in order, with an overall progress bar; a video that fails is reported, the rest go on."""
    recorded = []
    for video in tqdm(videos, desc="videos", unit="video", disable=not progress):
        recorded.append(record_video(video, evaluation_camera(template, video), detector, config, progress))
    return recorded


def person_frame_recall(recorded: list[RecordedVideo], labels: LabelSet) -> float | None:
    """Share of analyzed frames inside labeled smoking intervals where at least one person was detected."""
    inside = found = 0
    for video in recorded:
        intervals = labels.smoking(video.video) if video.error is None else []
        for frame in video.frames:
            if any(i.start_s <= frame.t <= i.end_s for i in intervals):
                inside += 1
                found += frame.persons > 0
    return found / inside if inside else None


# Evidence is recorded down to this cigarette score so the sweep and frame-level AP can look below the shipped
# threshold. The configured operating point is unchanged by it: NMS is per class and the event logic keeps only
# scores >= min_score.
VIDEO_SCORE_FLOOR = 0.1


def default_grid() -> list[dict[str, Any]]:
    """Confidence × event-timing settings; each point overrides these fields of the configured EventSettings."""
    return [{"min_score": min_score, "min_hits": min_hits, "window_frames": 10, "min_duration_s": min_duration}
            for min_score in (VIDEO_SCORE_FLOOR, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
            for min_hits in (2, 3, 4, 6)
            for min_duration in (1.0, 2.0, 3.0)]


def rescorer(recorded: list[RecordedVideo], base: EventSettings) -> Callable[[Mapping[str, Any]], list[VideoRun]]:
    def rescore(params: Mapping[str, Any]) -> list[VideoRun]:
        settings = base.model_copy(update=dict(params))
        return [video.rescored(settings) for video in recorded]

    return rescore
