"""``Detector``: finds persons and cigarettes in frames with any backend.

>>> detector = Detector(DetectorSettings(backend="openvino"))   # doctest: +SKIP
>>> detections = detector.detect(frame_bgr)                      # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from detector.backends import Backend, BackendName, Precision, open_backend
from detector.detections import CIGARETTE, PERSON, Detections, box_iou

log = logging.getLogger(__name__)
MODELS_DIR = Path(os.environ.get("SMOKEWATCH_MODELS_DIR", Path(__file__).resolve().parent.parent / "models"))
SHIPPED_MODEL = "smokewatch-v34"
SHIPPED_IMGSZ = 512  # the input size the shipped model scores best at on the held-out sets (model card)
LETTERBOX_FILL = 114
Fusion = Literal["max", "mean"]
VIEW_FLOOR_SHARE = 0.25  # with mean fusion, each view reports boxes down to this share of the class threshold


def exported_model_path(weights: Path, backend: BackendName) -> Path:
    """Where ``weights`` (a .pt) has its export for ``backend``, as ``detector.training.export`` names it."""
    return {
        "pytorch": weights,
        "onnx": weights.with_suffix(".onnx"),
        "openvino": weights.with_name(f"{weights.stem}_openvino_model"),
    }[backend]


def shipped_model_path(backend: BackendName) -> Path:
    """Where the shipped model lives for ``backend`` (``models/`` in the repository)."""
    return exported_model_path(MODELS_DIR / f"{SHIPPED_MODEL}.pt", backend)


class SecondLookSettings(BaseModel):
    """A higher-resolution pass over each person crop, for cigarettes too small in the full frame."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run the second look on person crops.")
    imgsz: int = Field(320, ge=64, le=1280, description="Long side of the crop pass input, in pixels (the short side is 3/5 of it).")
    max_persons: int = Field(4, ge=1, description="At most this many persons (highest score first) per frame.")
    margin: float = Field(0.15, ge=0, le=1, description="Crop grows by this fraction of the person box on each side.")
    min_zoom: float = Field(1.5, ge=1, description="Only look again when the crop is seen at least this many times "
                                                   "larger than in the first pass.")


class DetectorSettings(BaseModel):
    """Which model runs, how, and which boxes count."""

    model_config = ConfigDict(extra="forbid")

    model: Path | None = Field(None, description="Model file (.pt, .onnx or OpenVINO folder); None uses the shipped model.")
    backend: Literal["auto", "openvino", "onnx", "pytorch"] = Field(
        "auto", description="'auto' takes the model's format, or OpenVINO for the shipped model.")
    imgsz: int = Field(SHIPPED_IMGSZ, ge=64, le=1920, description="Longest side of the first-pass input, in pixels "
                                                                 "(default: the size the shipped model scores best at).")
    person_conf: float = Field(0.35, gt=0, lt=1, description="Minimum score of a person box.")
    cigarette_conf: float = Field(0.25, gt=0, lt=1, description="Minimum score of a cigarette box.")
    border: int = Field(16, ge=0, le=256, description="Grey margin in pixels around the resized frame on each side "
                                                     "of the first-pass input (rounded up to the stride of 32). The "
                                                     "model learned on mosaics with grey margins and finds cigarettes "
                                                     "better with one (model card); 0 runs the frame alone, cheaper.")
    iou: float = Field(0.5, gt=0, lt=1, description="Non-maximum suppression IoU.")
    mirror: bool = Field(True, description="Also run each frame mirrored left to right (at every input size) and "
                                           "fuse the views (see fusion). The shipped model's held-out figures are "
                                           "with it (model card); false halves the first pass's time and costs "
                                           "accuracy.")
    extra_sizes: list[int] = Field([], description="Also run the first pass at these input sizes (longest side, "
                                                   "pixels, each 64-1920) and fuse the views (see fusion); each "
                                                   "adds its own inference time.")
    fusion: Fusion = Field("max", description="How several views' overlapping boxes (by the NMS IoU) become one: the "
                                              "views' score-weighted mean box, scored by the highest view ('max') "
                                              "or the mean over the views, a view that missed it counting 0 "
                                              "('mean'). Ignored with one view.")
    threads: int = Field(max(1, os.cpu_count() or 1), ge=1, description="CPU threads for inference.")
    max_batch: int = Field(4, ge=1, le=64, description="Most images (frames, or person crops) one inference call "
                                                       "takes in detect_batch; 1 runs them one by one. Each batch "
                                                       "size is a compiled model for OpenVINO (about 25 MB each at 4).")
    openvino_precision: Precision = Field("bf16", description="OpenVINO CPU precision: 'bf16' (about 2x faster where "
                                                               "the CPU has it natively, AVX-512 BF16 or AMX; same AP "
                                                               "in the model card; f32 elsewhere, with a warning) or "
                                                               "'f32'.")
    second_look: SecondLookSettings = Field(default_factory=SecondLookSettings,
                                            description="Second look at person crops.")

    @field_validator("extra_sizes")
    @classmethod
    def _sizes_in_range(cls, sizes: list[int]) -> list[int]:
        bad = [size for size in sizes if not 64 <= size <= 1920]
        if bad:
            raise ValueError(f"extra_sizes must each be 64-1920 pixels, got {bad}")
        return sizes

    def one_view(self) -> DetectorSettings:
        """These settings with the first pass on ``imgsz`` alone: no mirror view, no extra sizes."""
        return self.model_copy(update={"mirror": False, "extra_sizes": []})

    def views(self) -> list[tuple[int, bool]]:
        """The first pass's views as (input size, mirrored): ``imgsz`` straight first."""
        sizes = dict.fromkeys([self.imgsz, *self.extra_sizes])  # each size once, in order
        return [(size, flipped) for size in sizes for flipped in ((False, True) if self.mirror else (False,))]


def check_frame(frame: object) -> np.ndarray:
    """Raise a clear error unless ``frame`` is an HxWx3 uint8 BGR image."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 BGR, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must have shape (height, width, 3), got {frame.shape}")
    if frame.shape[0] < 16 or frame.shape[1] < 16:
        raise ValueError(f"frame is too small to analyze: {frame.shape[1]}x{frame.shape[0]}")
    return frame


class Letterbox:
    """Resize keeping the aspect ratio and pad to the network's input; maps boxes back."""

    def __init__(self, shape: tuple[int, int], imgsz: int, fixed: tuple[int, int] | None, border: int = 0) -> None:
        """The image resized to ``imgsz`` on its longest side, with at least ``border`` pixels of grey on each
        side, rounded up to the network's stride of 32; or, for a required input (h, w) ``fixed``, resized to
        fit inside it less the border."""
        h, w = shape
        if fixed is None:
            self.scale = imgsz / max(h, w)
            new_w, new_h = round(w * self.scale), round(h * self.scale)
            self.out_w, self.out_h = -(-(new_w + 2 * border) // 32) * 32, -(-(new_h + 2 * border) // 32) * 32
        else:
            self.out_h, self.out_w = fixed
            self.scale = min((self.out_h - 2 * border) / h, (self.out_w - 2 * border) / w)
            new_w, new_h = round(w * self.scale), round(h * self.scale)
        self.new_size = (new_w, new_h)
        self.pad_x, self.pad_y = (self.out_w - new_w) // 2, (self.out_h - new_h) // 2

    def apply(self, image: np.ndarray) -> np.ndarray:
        resized = cv2.resize(image, self.new_size, interpolation=cv2.INTER_LINEAR)
        bottom, right = self.out_h - self.new_size[1] - self.pad_y, self.out_w - self.new_size[0] - self.pad_x
        if not (self.pad_y or bottom or self.pad_x or right):
            return resized
        return cv2.copyMakeBorder(resized, self.pad_y, bottom, self.pad_x, right, cv2.BORDER_CONSTANT,
                                  value=(LETTERBOX_FILL,) * 3)

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        out = xyxy.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


def decode(output: np.ndarray, min_conf: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw head output ``(4 + classes, anchors)`` to boxes (xyxy), scores and classes after per-class NMS."""
    scores_all = output[4:].T
    class_id = scores_all.argmax(1)
    score = scores_all[np.arange(len(class_id)), class_id]
    keep = score >= min_conf[class_id]
    cx, cy, w, h = output[:4, keep]
    class_id, score = class_id[keep], score[keep]
    xywh = np.stack([cx - w / 2, cy - h / 2, w, h], 1)
    nms = cv2.dnn.NMSBoxesBatched(xywh.tolist(), score.tolist(), class_id.tolist(), 0.0, iou) if len(score) else []
    kept = np.asarray(nms, np.int64).reshape(-1)
    boxes = xywh[kept]
    boxes[:, 2:] += boxes[:, :2]
    return boxes, score[kept], class_id[kept]


def fuse_views(boxes: list[np.ndarray], scores: list[np.ndarray], classes: list[np.ndarray],
               iou: float, fusion: Fusion = "max") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's detections from several views (list item = view, each already through NMS), fused box by box.

    In descending score, a box joins the first cluster of its class whose fused box it overlaps by
    ``iou``, else starts one. A cluster's box is its members' score-weighted mean. Its score is the
    highest member's (``"max"``), or the mean over all views of each view's highest member, a view
    without one counting 0 (``"mean"``, weighted box fusion's rule): boxes seen in one view only
    fall, which suits close-up photos and several views; on video ``"max"`` keeps more (model card).
    """
    all_boxes = np.concatenate(boxes).astype(np.float32).reshape(-1, 4)
    all_scores = np.concatenate(scores).astype(np.float32)
    all_classes = np.concatenate(classes).astype(np.int64)
    view_of = np.concatenate([np.full(len(view), index) for index, view in enumerate(scores)]).astype(np.int64)
    fused_boxes, fused_scores, fused_classes = [], [], []
    for class_id in np.unique(all_classes):
        mine = np.flatnonzero(all_classes == class_id)
        mine = mine[np.argsort(-all_scores[mine], kind="stable")]
        centres = np.zeros((0, 4), np.float32)
        members: list[list[int]] = []
        for index in mine:
            overlap = box_iou(all_boxes[index][None], centres)[0]
            best = int(overlap.argmax()) if len(overlap) else -1
            if best < 0 or overlap[best] < iou:
                centres = np.vstack([centres, all_boxes[index]])
                members.append([int(index)])
                continue
            members[best].append(int(index))
            weights = all_scores[members[best]]
            centres[best] = (all_boxes[members[best]] * weights[:, None]).sum(0) / weights.sum()
        for centre, group in zip(centres, members, strict=True):
            fused_boxes.append(centre)
            if fusion == "max":
                fused_scores.append(all_scores[group[0]])  # members are taken in descending score
            else:
                best_per_view: dict[int, float] = {}
                for member in group:  # in descending score, so each view's first member is its best
                    best_per_view.setdefault(int(view_of[member]), float(all_scores[member]))
                fused_scores.append(sum(best_per_view.values()) / len(scores))
            fused_classes.append(class_id)
    return (np.array(fused_boxes, np.float32).reshape(-1, 4), np.array(fused_scores, np.float32),
            np.array(fused_classes, np.int64))


def crop_input_shape(width: int, height: int, imgsz: int) -> tuple[int, int]:
    """The second look's input (h, w): one of two fixed shapes, portrait or landscape.

    Fixed shapes keep OpenVINO on precompiled static models (see ``OpenVinoBackend``);
    3:5 fits a standing person with its margin and still magnifies a seated one.
    """
    short = -(-round(imgsz * 0.6) // 32) * 32
    return (imgsz, short) if height >= width else (short, imgsz)


class Detector:
    """Loads a model once and detects persons and cigarettes in frames."""

    def __init__(self, settings: DetectorSettings | None = None, score_floor: float | None = None) -> None:
        """``score_floor`` reports boxes of every class down to that score instead of the per-class thresholds,
        as AP measurement needs; the second look still visits only persons above ``person_conf``."""
        self.settings = settings or DetectorSettings()
        path = self.settings.model
        backend: BackendName | None = None if self.settings.backend == "auto" else self.settings.backend
        if path is None:
            backend = backend or "openvino"
            path = shipped_model_path(backend)
        self.model_path = path
        self.backend: Backend = open_backend(path, backend, self.settings.threads, self.settings.openvino_precision)
        if self.backend.name == "openvino" and self.backend.precision != self.settings.openvino_precision:
            _warn_precision(self.backend.precision, self.settings.openvino_precision)
        names = self.backend.names
        missing = {PERSON, CIGARETTE} - set(names.values())
        if missing:
            raise ValueError(f"{path}: model lacks the classes {sorted(missing)}; it has {sorted(names.values())}")
        self.names = names
        self.person_id = next(k for k, v in names.items() if v == PERSON)
        self.cigarette_id = next(k for k, v in names.items() if v == CIGARETTE)
        self._min_conf = np.full(max(names) + 1, 1.01, np.float32)  # classes we do not use never pass
        self._min_conf[self.person_id] = self.settings.person_conf
        self._min_conf[self.cigarette_id] = self.settings.cigarette_conf
        if score_floor is not None:
            self._min_conf[[self.person_id, self.cigarette_id]] = score_floor
        # A mean over views is at most its best view, so each view must report weaker boxes too: a box
        # the other views also see can still reach the threshold. The fused boxes are held to it again.
        several = len(self.settings.views()) > 1 and self.settings.fusion == "mean"
        self._view_min_conf = VIEW_FLOOR_SHARE * self._min_conf if several else self._min_conf

    @property
    def version(self) -> str:
        """Names the model file, for evidence manifests."""
        return f"{self.model_path.name} ({self.backend.name})"

    def warmup(self, shape: tuple[int, int] = (720, 1280)) -> None:
        self.detect(np.zeros((*shape, 3), np.uint8))

    def detect(self, frame: np.ndarray) -> Detections:
        """Persons and cigarettes in one BGR frame, in frame pixels."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: list[np.ndarray]) -> list[Detections]:
        """``detect`` for frames from several cameras (sizes may differ), in order.

        Frames whose network input has one shape run as one batch, and so do the person
        crops of all frames: on this CPU a batch of 4 costs 13 % less per image than 4 calls.
        """
        frames = [check_frame(frame) for frame in frames]
        first = self._first_pass(frames)
        if not self.settings.second_look.enabled:
            return first
        crops = [(index, crop) for index, frame in enumerate(frames) for crop in self._person_crops(frame, first[index])]
        look = self.settings.second_look
        # a border did not help crops
        found = self._run_batched([(crop.image, look.imgsz, crop.shape, 0) for _, crop in crops], self._min_conf)
        parts: list[list[Detections]] = [[detections] for detections in first]
        for (index, crop), detections in zip(crops, found, strict=True):
            cigarettes = detections.of_class(self.cigarette_id)
            cigarettes.xyxy[:, [0, 2]] += crop.x
            cigarettes.xyxy[:, [1, 3]] += crop.y
            parts[index].append(cigarettes)
        return [self._merge(part) for part in parts]

    def _first_pass(self, frames: list[np.ndarray]) -> list[Detections]:
        """The whole frames' detections; with several views (``mirror``, ``extra_sizes``), each frame's views fused."""
        views = self.settings.views()
        inputs = [(cv2.flip(frame, 1) if flipped else frame, size, None, self.settings.border)
                  for size, flipped in views for frame in frames]
        found = self._run_batched(inputs, self._view_min_conf)  # view-major: found[v * len(frames) + f]
        if len(views) == 1:
            return found
        fused = []
        for f, frame in enumerate(frames):
            parts = [found[v * len(frames) + f] for v in range(len(views))]
            boxes = []
            for (_, flipped), part in zip(views, parts, strict=True):
                xyxy = part.xyxy.copy()
                if flipped:
                    xyxy[:, [0, 2]] = frame.shape[1] - part.xyxy[:, [2, 0]]
                boxes.append(xyxy)
            fused_boxes, scores, classes = fuse_views(boxes, [part.confidence for part in parts],
                                                      [part.class_id for part in parts], self.settings.iou,
                                                      self.settings.fusion)
            kept = scores >= self._min_conf[classes]
            fused.append(Detections(fused_boxes[kept], scores[kept], classes[kept], names=self.names))
        return fused

    def _run_batched(self, inputs: Sequence[tuple[np.ndarray, int, tuple[int, int] | None, int]],
                     min_conf: np.ndarray) -> list[Detections]:
        """Detections in each (image, imgsz, fixed input shape, border) item, same-shaped inputs batched together."""
        letterboxes = [Letterbox(image.shape[:2], imgsz, self.backend.fixed_size or shape, border)
                       for image, imgsz, shape, border in inputs]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, letterbox in enumerate(letterboxes):
            by_shape.setdefault((letterbox.out_h, letterbox.out_w), []).append(index)
        results: list[Detections] = [Detections.empty(self.names)] * len(inputs)
        largest = min(self.settings.max_batch, self.backend.max_batch or self.settings.max_batch)
        for indices in by_shape.values():
            for batch in _split(indices, largest):
                outputs = self.backend.infer(np.stack([letterboxes[i].apply(inputs[i][0]) for i in batch]))
                for i, output in zip(batch, outputs, strict=True):
                    results[i] = self._decode(output, letterboxes[i], inputs[i][0].shape[:2], min_conf)
        return results

    def _decode(self, output: np.ndarray, letterbox: Letterbox, size: tuple[int, ...], min_conf: np.ndarray) -> Detections:
        boxes, scores, classes = decode(output, min_conf, self.settings.iou)
        boxes = letterbox.to_source(boxes)
        h, w = size[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return Detections(boxes, scores, classes, names=self.names)

    def _person_crops(self, frame: np.ndarray, first: Detections) -> list[_Crop]:
        """The regions around the most confident persons that the second look magnifies."""
        look = self.settings.second_look
        h, w = frame.shape[:2]
        first_scale = self.settings.imgsz / max(h, w)
        persons = first.of_class(self.person_id)
        persons = persons[persons.confidence >= self.settings.person_conf]
        crops = []
        for x1, y1, x2, y2 in persons.xyxy[np.argsort(-persons.confidence)[: look.max_persons]]:
            mx, my = (x2 - x1) * look.margin, (y2 - y1) * look.margin
            cx1, cy1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
            cx2, cy2 = int(min(w, x2 + mx)), int(min(h, y2 + my))
            if cx2 - cx1 < 16 or cy2 - cy1 < 16:
                continue
            shape = crop_input_shape(cx2 - cx1, cy2 - cy1, look.imgsz)
            if min(shape[0] / (cy2 - cy1), shape[1] / (cx2 - cx1)) < look.min_zoom * first_scale:
                continue  # the crop would not be seen any larger than in the first pass
            crops.append(_Crop(frame[cy1:cy2, cx1:cx2], cx1, cy1, shape))
        return crops

    def _merge(self, parts: list[Detections]) -> Detections:
        """The first pass plus the crops' cigarettes, duplicates suppressed."""
        if len(parts) == 1:
            return parts[0]
        merged = Detections.merge(parts)
        xywh = merged.xyxy.copy()
        xywh[:, 2:] -= xywh[:, :2]
        kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), merged.confidence.tolist(), merged.class_id.tolist(),
                                       0.0, self.settings.iou)
        return merged[np.asarray(kept, np.int64).reshape(-1)]


@dataclass(frozen=True)
class _Crop:
    image: np.ndarray
    x: int  # the crop's top-left corner in the frame
    y: int
    shape: tuple[int, int]  # network input (h, w), see crop_input_shape


def _split(indices: list[int], largest: int) -> list[list[int]]:
    """Cut into batches of power-of-two sizes (7 -> 4, 2, 1), so a static backend compiles few shapes."""
    batches, start = [], 0
    while start < len(indices):
        size = 1 << (min(largest, len(indices) - start).bit_length() - 1)
        batches.append(indices[start : start + size])
        start += size
    return batches


@functools.cache  # once per process: evaluations open a detector per video
def _warn_precision(computes: str, asked: str) -> None:
    log.warning("OpenVINO computes %s on this CPU, not the %s asked for (openvino_precision): accuracy and speed are "
                "those of %s", computes, asked, computes)
