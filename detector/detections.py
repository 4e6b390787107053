"""The one detection type every part of Smokewatch passes around."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PERSON, CIGARETTE = "person", "cigarette"


@dataclass
class Detections:
    """Boxes found in one frame.

    ``xyxy`` are pixel corners in the frame's coordinates; ``tracker_id`` is -1 for
    untracked boxes. Index with an int array or boolean mask to select rows.

    >>> d = Detections(np.array([[0, 0, 10, 20]], np.float32), np.array([0.9], np.float32), np.array([0]))
    >>> len(d), d.of_class(0).confidence.tolist()
    (1, [0.8999999761581421])
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    names: dict[int, str] = field(default_factory=lambda: {0: PERSON, 1: CIGARETTE})

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, np.int64).reshape(-1)
        if len(self.tracker_id) == 0:
            self.tracker_id = np.full(len(self.xyxy), -1, np.int64)
        self.tracker_id = np.asarray(self.tracker_id, np.int64).reshape(-1)
        n = len(self.xyxy)
        if not (len(self.confidence) == len(self.class_id) == len(self.tracker_id) == n):
            raise ValueError("Detections arrays must all have one row per box")

    @classmethod
    def empty(cls, names: dict[int, str] | None = None) -> Detections:
        return cls(np.empty((0, 4)), np.empty(0), np.empty(0), names=names or {0: PERSON, 1: CIGARETTE})

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        if isinstance(index, int):
            index = np.array([index])
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index],
                          self.tracker_id[index], self.names)

    def class_index(self, name: str) -> int:
        for class_id, class_name in self.names.items():
            if class_name == name:
                return class_id
        raise KeyError(f"model has no class {name!r}; it has {sorted(self.names.values())}")

    def of_class(self, class_id: int | str) -> Detections:
        if isinstance(class_id, str):
            class_id = self.class_index(class_id)
        return self[self.class_id == class_id]

    @classmethod
    def merge(cls, parts: list[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.xyxy for p in parts]), np.concatenate([p.confidence for p in parts]),
                   np.concatenate([p.class_id for p in parts]), np.concatenate([p.tracker_id for p in parts]),
                   parts[0].names)

    def to_rows(self) -> list[dict[str, object]]:
        """JSON-friendly rows, e.g. for manifests and APIs."""
        return [
            {"class": self.names.get(int(c), str(c)), "confidence": round(float(s), 4),
             "box": [round(float(v), 1) for v in box], "track_id": int(t)}
            for box, s, c, t in zip(self.xyxy, self.confidence, self.class_id, self.tracker_id, strict=True)
        ]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(high - low, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
