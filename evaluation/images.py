"""AP on labeled image sets through ultralytics' validator, for any model the detector loads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from detector import Detector, ModelLoadError


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    images: int
    instances: int
    ap50: float
    ap50_95: float
    precision: float  # at the given confidence threshold
    recall: float


@contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """Keep ultralytics' validator from printing its dataset scan, model summary and progress bar.

    ``val(verbose=False)`` still prints them; ultralytics hides its bar when its logger is above INFO.
    """
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def evaluate_images(model: Path, data_yaml: Path, imgsz: int, conf_threshold: dict[str, float], nms_iou: float,
                    batch: int = 8) -> list[ClassMetrics]:
    """Per-class AP50, AP50-95 and precision/recall at each class's shipped threshold, with the detector's NMS IoU."""
    from ultralytics import YOLO

    if not data_yaml.is_file():
        raise FileNotFoundError(f"data yaml not found: {data_yaml}")
    if not model.exists():
        raise ModelLoadError(f"model file not found: {model}")
    dataset_names = yaml.safe_load(data_yaml.read_text()).get("names", {})
    yolo = YOLO(str(model), task="detect")
    model_names = {int(k): v for k, v in yolo.names.items()} if yolo.names else {}
    dataset_names = dict(enumerate(dataset_names)) if isinstance(dataset_names, list) else {int(k): v for k, v in dataset_names.items()}
    if model_names and dataset_names != model_names:
        raise ValueError(f"{data_yaml}: class names {dataset_names} differ from the model's {model_names}; "
                         "use a data yaml written by `python -m detector.training` (runs/data/heldout-*.yaml)")
    with _quiet_ultralytics():
        results = yolo.val(data=str(data_yaml), imgsz=imgsz, batch=batch, conf=0.001, iou=nms_iou, plots=False,
                           verbose=False, device="cpu", workers=0)
    box = results.box
    grid = np.linspace(0, 1, box.p_curve.shape[1])
    rows = []
    for position, class_id in enumerate(box.ap_class_index):
        name = dataset_names[int(class_id)]
        index = int(np.searchsorted(grid, conf_threshold.get(name, 0.25)))
        rows.append(ClassMetrics(
            name=name, images=int(results.nt_per_image[class_id]), instances=int(results.nt_per_class[class_id]),
            ap50=float(box.ap50[position]), ap50_95=float(box.ap[position]),
            precision=float(box.p_curve[position, index]), recall=float(box.r_curve[position, index]),
        ))
    return rows


@dataclass(frozen=True)
class BoxScale:
    """How the detector's boxes compare in size with the labeled ones they match.

    Datasets draw cigarette boxes differently (tight on the paper, or with a margin of lips and
    fingers); a model that learned one convention misses IoU 0.5 on another, which shows as a low
    AP50-95 and a side ratio far from 1.
    """

    labels: int
    matched: int  # labels with a detection of the class at IoU >= min_iou
    median_side_ratio: float  # sqrt(detected area / labeled area), median over the matched labels
    min_iou: float

    def describe(self) -> str:
        return (f"{self.matched} of {self.labels} found at IoU >= {self.min_iou:g}, "
                f"median side ratio {self.median_side_ratio:.2f}")


def _labeled_images(data_yaml: Path) -> list[Path]:
    spec = yaml.safe_load(data_yaml.read_text())
    listing = Path(spec.get("path", data_yaml.parent)) / spec["val"]
    return [Path(line) for line in listing.read_text().split()]


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    low, high = np.maximum(box[:2], others[:, :2]), np.minimum(box[2:], others[:, 2:])
    inter = np.clip(high - low, 0, None).prod(axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(others) - inter)


def box_scale(detector: Detector, data_yaml: Path, class_name: str, min_iou: float = 0.3) -> BoxScale:
    """Match each labeled box of ``class_name`` to the detector's best-overlapping box at its shipped threshold."""
    ratios, labels = [], 0
    for image_path in _labeled_images(data_yaml):
        image = cv2.imread(str(image_path))
        if image is None:
            raise ValueError(f"{data_yaml}: cannot read image {image_path}")
        height, width = image.shape[:2]
        label_file = Path(str(image_path).replace("/images/", "/labels/")).with_suffix(".txt")
        found = detector.detect(image).of_class(class_name)
        class_id = found.class_index(class_name)
        for row in (label_file.read_text().splitlines() if label_file.is_file() else []):
            values = row.split()
            if len(values) != 5 or int(values[0]) != class_id:
                continue
            cx, cy, w, h = (float(v) for v in values[1:])
            labeled = np.array([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            labels += 1
            if len(found):
                overlap = _iou(labeled, found.xyxy)
                if overlap.max() >= min_iou:
                    best = found.xyxy[overlap.argmax()]
                    ratios.append(float(np.sqrt((best[2] - best[0]) * (best[3] - best[1]) / (w * width * h * height))))
    return BoxScale(labels, len(ratios), float(np.median(ratios)) if ratios else float("nan"), min_iou)


def as_dicts(rows: list[ClassMetrics]) -> list[dict[str, object]]:
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(row).items()} for row in rows]
