"""Build one YOLO dataset (person + cigarette) from the cigarette image sets.

Steps: gather the source splits, drop training images that are near-duplicates of a
held-out image (perceptual hash, letterbox padding removed first, since one source is
letterboxed and the others stretched), pseudo-label persons with the COCO YOLOv5n, and
write list files plus a ``data.yaml`` for ultralytics and one yaml per held-out split.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from detector.training.coco_yolov5 import CocoPersonDetector

log = logging.getLogger(__name__)

CLASS_NAMES = {0: "person", 1: "cigarette"}
PERSON, CIGARETTE = 0, 1
Role = Literal["train", "val", "test"]


@dataclass(frozen=True)
class SourceSplit:
    """One split of one labeled cigarette dataset (YOLO layout: images/ and labels/)."""

    dataset: str
    split: str
    root: Path
    role: Role
    licence: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.split}"

    def image_files(self) -> list[Path]:
        folder = self.root / self.split / "images"
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset split not found: {folder}")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def default_sources(shared: Path, rokok: Path | None) -> list[SourceSplit]:
    """Train on everything but the held-out splits the model card reports on."""
    wpb, som = shared / "datasets" / "cigarette-wpb75", shared / "datasets" / "smoking-somking"
    cc_wpb = "CC BY 4.0, Roboflow Universe smoking-detection-wpb75 v3 (my-projects-ztgl4)"
    pd_som = "Public Domain, Roboflow Universe somking v2 (aurora-d8b4o)"
    sources = [
        SourceSplit("cigarette-wpb75", "train", wpb, "train", cc_wpb),
        SourceSplit("smoking-somking", "train", som, "train", pd_som),
        SourceSplit("cigarette-wpb75", "valid", wpb, "val", cc_wpb),
        SourceSplit("cigarette-wpb75", "test", wpb, "test", cc_wpb),
        SourceSplit("smoking-somking", "valid", som, "test", pd_som),
    ]
    if rokok is not None:
        cc_rokok = "CC BY 4.0, Roboflow Universe cigarettev6 v6 (rokok-jw5ic), via muhammadahnaf24/cigarette-detection"
        sources += [
            SourceSplit("rokok", "train", rokok, "train", cc_rokok),
            SourceSplit("rokok", "valid", rokok, "train", cc_rokok),
            SourceSplit("rokok", "test", rokok, "test", cc_rokok),
        ]
    return sources


def content_hash(image: np.ndarray) -> int:
    """64-bit difference hash of the image content with uniform letterbox borders cropped."""
    corner = image[0, 0].astype(np.int16)
    differs = (np.abs(image.astype(np.int16) - corner) > 12).any(axis=2)
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if rows.size > 16 and cols.size > 16:
        image = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    small = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def _hamming_min(hashes: np.ndarray, against: np.ndarray) -> np.ndarray:
    """For each hash, the smallest Hamming distance to any hash in ``against``."""
    best = np.full(len(hashes), 64, dtype=np.int64)
    for start in range(0, len(against), 512):
        xor = hashes[:, None] ^ against[None, start : start + 512]
        distances = np.unpackbits(xor.view(np.uint8).reshape(*xor.shape, 8), axis=-1).sum(-1)
        best = np.minimum(best, distances.min(axis=1))
    return best


@dataclass
class ImageRecord:
    path: str
    source: str
    role: Role
    hash: int
    cigarettes: list[list[float]]  # class-free YOLO rows: cx, cy, w, h (normalised)
    persons: list[list[float]] | None = None


def _read_cigarettes(image_path: Path) -> list[list[float]]:
    label = image_path.parent.parent / "labels" / (image_path.stem + ".txt")
    rows = []
    if label.is_file():
        for line in label.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 5:
                rows.append([float(v) for v in parts[1:]])
    return rows


def _inside_image(box: list[float]) -> list[float]:
    """Clip a normalised cx, cy, w, h box to the image (ultralytics drops images with boxes outside it)."""
    cx, cy, w, h = box
    x1, y1 = max(0.0, cx - w / 2), max(0.0, cy - h / 2)
    x2, y2 = min(1.0, cx + w / 2), min(1.0, cy + h / 2)
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


def _read_image(path: str) -> np.ndarray:
    image = cv2.imread(path)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return image


def _list_key(record: ImageRecord) -> str:
    """Train and val are one list each; every held-out split keeps its own list."""
    return record.role if record.role != "test" else record.source


def _batched(items: list[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_repeats(repeats: Mapping[str, int], train_sources: set[str]) -> None:
    """Refuse source_repeats that name no training source (a typo would silently weigh nothing)."""
    if unknown := sorted(set(repeats) - train_sources):
        raise ValueError(f"source_repeats names {', '.join(unknown)}, which is not a training source; "
                         f"training sources: {', '.join(sorted(train_sources))}")


def prepare(sources: list[SourceSplit], out: Path, coco_checkpoint: Path,
            dedup_distance: int = 4, person_conf: float = 0.35, repeats: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Write the merged dataset under ``out`` and return its summary (also saved as summary.json).

    ``repeats`` lists a training source's images that many times in the train list (source name, such
    as ``cigarette-wpb75-train``, to count; others once), so a small source weighs more per epoch.
    """
    repeats = dict(repeats or {})
    check_repeats(repeats, {s.name for s in sources if s.role == "train"})
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    records_file = out / "records.json"
    cached: dict[str, ImageRecord] = {}
    if records_file.is_file():
        cached = {r["path"]: ImageRecord(**r) for r in json.loads(records_file.read_text())}

    records: list[ImageRecord] = []
    for source in sources:
        for path in tqdm(source.image_files(), desc=f"hash {source.name}", leave=False):
            if str(path) in cached:
                records.append(cached[str(path)])
                continue
            image = cv2.imread(str(path))
            if image is None:
                log.warning("skipping unreadable image %s", path)
                continue
            records.append(ImageRecord(str(path), source.name, source.role, content_hash(image), _read_cigarettes(path)))

    # Near-duplicate removal: held-out splits win over val, val over train; exact repeats inside
    # train are collapsed so no image counts twice.
    hashes = {role: np.array([r.hash for r in records if r.role == role], dtype=np.uint64)
              for role in ("train", "val", "test")}
    dropped: dict[str, int] = {}
    keep: list[ImageRecord] = []
    for role, against in (("test", None), ("val", hashes["test"]), ("train", np.concatenate([hashes["val"], hashes["test"]]))):
        role_records = [r for r in records if r.role == role]
        if against is not None and len(role_records):
            distance = _hamming_min(np.array([r.hash for r in role_records], dtype=np.uint64), against)
            leaking = distance <= dedup_distance
            dropped[f"{role}_near_duplicate_of_heldout"] = int(leaking.sum())
            role_records = [r for r, leak in zip(role_records, leaking, strict=True) if not leak]
        seen: set[int] = set()
        unique = []
        for r in role_records:
            if r.hash not in seen:
                seen.add(r.hash)
                unique.append(r)
        dropped[f"{role}_exact_repeat"] = len(role_records) - len(unique)
        keep += unique

    todo = [r for r in keep if r.persons is None]
    if todo:
        labeler = CocoPersonDetector(coco_checkpoint, conf=person_conf)
        for batch in tqdm(list(_batched(todo, 8)), desc="pseudo-label persons"):
            images = [_read_image(r.path) for r in batch]
            for record, image, boxes in zip(batch, images, labeler.persons(images), strict=True):
                h, w = image.shape[:2]
                record.persons = [[(b[0] + b[2]) / 2 / w, (b[1] + b[3]) / 2 / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h]
                                  for b in boxes[:, :4].tolist()]
            records_file.write_text(json.dumps([asdict(r) for r in {**cached, **{x.path: x for x in keep}}.values()]))
    records_file.write_text(json.dumps([asdict(r) for r in keep]))

    lists: dict[str, list[str]] = {"train": [], "val": []}
    # Each training source once, to measure how well the network fits the images it learned from.
    fit_lists: dict[str, list[str]] = {}
    for record in keep:
        source_path = Path(record.path).resolve()
        image_link = out / "images" / record.source / source_path.name
        label_file = out / "labels" / record.source / (source_path.stem + ".txt")
        image_link.parent.mkdir(parents=True, exist_ok=True)
        label_file.parent.mkdir(parents=True, exist_ok=True)
        if image_link.is_symlink() and image_link.readlink() != source_path:
            image_link.unlink()
        if not image_link.is_symlink():
            image_link.symlink_to(source_path)
        rows = [(PERSON, _inside_image(box)) for box in record.persons or []] + [(CIGARETTE, box) for box in record.cigarettes]
        label_file.write_text("".join(f"{c} {' '.join(f'{v:.6f}' for v in box)}\n" for c, box in rows))
        lists.setdefault(_list_key(record), []).extend([str(image_link)] * repeats.get(record.source, 1))
        if record.role == "train":
            fit_lists.setdefault(record.source, []).append(str(image_link))

    def write_list(name: str, files: list[str]) -> None:
        (out / f"{name}.txt").write_text("\n".join(files) + "\n")

    yaml_files: list[str] = []

    def write_yaml(name: str, train_list: str, val_list: str | None = None) -> None:
        (out / f"{name}.yaml").write_text(yaml.safe_dump({"path": str(out), "train": train_list,
                                                          "val": val_list or train_list, "names": CLASS_NAMES}))
        yaml_files.append(f"{name}.yaml")

    for key, files in lists.items():
        write_list(key, files)
        if key not in ("train", "val"):
            write_yaml(f"heldout-{key}", f"{key}.txt")
    for source_name, files in fit_lists.items():
        write_list(f"fit-{source_name}", files)
        write_yaml(f"fit-{source_name}", f"fit-{source_name}.txt")
    write_yaml("data", "train.txt", "val.txt")

    summary: dict[str, Any] = {
        "images": {key: len(set(files)) for key, files in lists.items()},
        "train_list_entries": len(lists["train"]),
        "source_repeats": repeats,
        "cigarette_boxes": {key: sum(len(r.cigarettes) for r in keep if _list_key(r) == key) for key in lists},
        "person_boxes_pseudo": {key: sum(len(r.persons or []) for r in keep if _list_key(r) == key) for key in lists},
        "dropped": dropped,
        "dedup_max_hamming": dedup_distance,
        "person_pseudo_label_conf": person_conf,
        "sources": [{"name": s.name, "role": s.role, "licence": s.licence} for s in sources],
        "yaml_files": sorted(yaml_files),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
