"""AP on labeled image sets through ultralytics' validator, for any model the detector loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from detector import ModelLoadError


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    images: int
    instances: int
    ap50: float
    ap50_95: float
    precision: float  # at the given confidence threshold
    recall: float


def evaluate_images(model: Path, data_yaml: Path, imgsz: int, conf_threshold: dict[str, float],
                    batch: int = 8) -> list[ClassMetrics]:
    """Per-class AP50, AP50-95 and precision/recall at each class's shipped threshold."""
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
    results = yolo.val(data=str(data_yaml), imgsz=imgsz, batch=batch, conf=0.001, iou=0.6, plots=False, verbose=False,
                       device="cpu", workers=0)
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


def as_dicts(rows: list[ClassMetrics]) -> list[dict[str, object]]:
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(row).items()} for row in rows]
