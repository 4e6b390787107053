"""Smoking evidence: which person, if any, holds each cigarette in a frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from detector.detections import CIGARETTE, PERSON, Detections


class AssociationSettings(BaseModel):
    """How a cigarette is tied to a person box."""

    model_config = ConfigDict(extra="forbid")

    margin_x: float = Field(0.25, ge=0, le=1, description="A hand may reach this fraction of the box width outside it.")
    margin_y: float = Field(0.1, ge=0, le=1, description="Likewise above and below, as a fraction of box height.")
    mouth_fraction: float = Field(0.35, gt=0, le=1, description="Top fraction of a person box counted as the "
                                                                 "head and mouth region.")


@dataclass(frozen=True)
class SmokingEvidence:
    """A cigarette seen with a person in one frame."""

    person_index: int  # row in the frame's Detections
    track_id: int  # -1 when the person is not tracked
    person_box: tuple[float, float, float, float]
    cigarette_box: tuple[float, float, float, float]
    score: float  # the cigarette's detection score
    region: Literal["mouth", "hand"]


@dataclass(frozen=True)
class FrameEvidence:
    """All smoking evidence in one frame: per person, and cigarettes no person explains."""

    persons: list[SmokingEvidence]
    unattached: list[tuple[tuple[float, float, float, float], float]]

    def best_for(self, person_index: int) -> SmokingEvidence | None:
        candidates = [e for e in self.persons if e.person_index == person_index]
        return max(candidates, key=lambda e: e.score, default=None)


def _box(row: np.ndarray) -> tuple[float, float, float, float]:
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def associate(detections: Detections, settings: AssociationSettings | None = None) -> FrameEvidence:
    """Tie each cigarette to the person whose box (grown by the hand margins) holds its centre.

    Where boxes overlap, a person whose own box holds the centre wins over one who only
    reaches it with the margin, and then the person whose box centre is nearest (relative
    to box size), so of two people side by side the nearer one is chosen.
    """
    settings = settings or AssociationSettings()
    person_rows = np.flatnonzero(detections.class_id == detections.class_index(PERSON))
    cigarette_rows = np.flatnonzero(detections.class_id == detections.class_index(CIGARETTE))
    persons, unattached = [], []
    for c in cigarette_rows:
        box = detections.xyxy[c]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        best: tuple[tuple[bool, float], int] | None = None  # (rank, person row)
        for p in person_rows:
            x1, y1, x2, y2 = detections.xyxy[p]
            w, h = x2 - x1, y2 - y1
            mx, my = w * settings.margin_x, h * settings.margin_y
            if not (x1 - mx <= cx <= x2 + mx and y1 - my <= cy <= y2 + my):
                continue
            inside = x1 <= cx <= x2 and y1 <= cy <= y2
            distance = float(np.hypot((cx - (x1 + x2) / 2) / max(w, 1.0), (cy - (y1 + y2) / 2) / max(h, 1.0)))
            rank = (not inside, distance)
            if best is None or rank < best[0]:
                best = (rank, int(p))
        score = float(detections.confidence[c])
        if best is None:
            unattached.append((_box(box), score))
            continue
        person = best[1]
        y1, h = detections.xyxy[person][1], detections.xyxy[person][3] - detections.xyxy[person][1]
        region: Literal["mouth", "hand"] = "mouth" if cy <= y1 + settings.mouth_fraction * h else "hand"
        persons.append(SmokingEvidence(person, int(detections.tracker_id[person]), _box(detections.xyxy[person]), _box(box),
                                       score, region))
    return FrameEvidence(persons, unattached)
