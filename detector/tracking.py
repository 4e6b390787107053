"""Per-stream person tracking with ultralytics' ByteTrack, so a person keeps one id across frames."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from ultralytics.trackers.byte_tracker import BYTETracker

from detector.detections import PERSON, Detections


class TrackerSettings(BaseModel):
    """ByteTrack parameters (see ultralytics' bytetrack.yaml)."""

    model_config = ConfigDict(extra="forbid")

    high_thresh: float = Field(0.4, gt=0, lt=1, description="Detections above this are matched first.")
    low_thresh: float = Field(0.1, gt=0, lt=1, description="Detections between this and high_thresh are matched second.")
    new_track_thresh: float = Field(0.45, gt=0, lt=1, description="Unmatched detections above this start a track.")
    lost_seconds: float = Field(2.0, gt=0, description="A lost person keeps their id this long.")
    match_thresh: float = Field(0.8, gt=0, le=1, description="IoU cost threshold for matching.")


class _ByteTrackInput:
    """The view of Detections that BYTETracker reads (conf, cls, xywh, boolean indexing)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        self.xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _ByteTrackInput:
        return _ByteTrackInput(self.xyxy[index], self.conf[index], self.cls[index])


class PersonTracker:
    """Gives each person box a track id that stays with that person from frame to frame.

    One tracker per camera stream; ``frame_rate`` is the analysis rate, not the camera's.
    """

    def __init__(self, frame_rate: float, settings: TrackerSettings | None = None) -> None:
        settings = settings or TrackerSettings()
        self._tracker = BYTETracker(SimpleNamespace(
            track_high_thresh=settings.high_thresh, track_low_thresh=settings.low_thresh,
            new_track_thresh=settings.new_track_thresh, match_thresh=settings.match_thresh,
            track_buffer=max(1, round(settings.lost_seconds * frame_rate)), fuse_score=True,
        ))

    def update(self, detections: Detections) -> Detections:
        """Return ``detections`` with tracker ids set on persons (-1 on everything else)."""
        tracked = detections[np.arange(len(detections))]
        tracked.tracker_id[:] = -1
        person_rows = np.flatnonzero(detections.class_id == detections.class_index(PERSON))
        persons = detections[person_rows]
        output = self._tracker.update(_ByteTrackInput(persons.xyxy, persons.confidence, persons.class_id))
        for row in output:
            index = person_rows[int(row[7])]
            tracked.tracker_id[index] = int(row[4])
            tracked.xyxy[index] = row[:4]  # Kalman-smoothed box keeps zone anchors steady
        return tracked
