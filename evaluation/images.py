"""AP on labeled image sets, measured through the ``Detector`` the service runs.

The detector's own letterbox, backend, precision, NMS and second look produce the boxes, so a
figure here is the shipped pipeline's, not a training framework's approximation of it. Matching
and AP follow COCO: detections in descending score take the best unmatched label at each IoU
threshold, and AP is the mean interpolated precision at 101 recall points.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from detector import Detections, Detector, DetectorSettings
from detector.detections import box_iou
from evaluation.metrics import PairedDifference, paired_bootstrap

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
SCORE_FLOOR = 0.001  # boxes down to this score make the precision-recall curve (as ultralytics and COCO do)
BATCH = 8
RESAMPLES = 1000  # bootstrap draws for the AP50 interval


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    labels: np.ndarray  # (n, 5): class id, then centre x, centre y, width, height as fractions of the image


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    images: int  # images with at least one label of the class
    instances: int
    ap50: float
    ap50_interval: tuple[float, float]  # 95 % bootstrap interval over the images (see ap50_interval)
    ap50_95: float
    precision: float  # of the detections at the class's threshold, matched at IoU 0.5
    recall: float

    HEADER = f"{'AP50':>6} {'AP50-95':>8} {'P@thr':>6} {'R@thr':>6} {'AP50 95% interval':>18}"

    def figures(self) -> str:
        """The row's figures in the columns of ``HEADER``."""
        low, high = self.ap50_interval
        return (f"{self.ap50:>6.3f} {self.ap50_95:>8.3f} {self.precision:>6.3f} {self.recall:>6.3f} "
                f"{f'{low:.3f}-{high:.3f}':>18}")


@dataclass(frozen=True)
class BoxScale:
    """How the detector's boxes compare in size with the labeled ones they match.

    Datasets draw cigarette boxes differently (tight on the paper, or with a margin of lips and
    fingers); a model that learned one convention misses IoU 0.5 on another, which shows as a low
    AP50-95 and a side ratio far from 1.
    """

    labels: int
    matched: int  # labels with a detection of the class at its threshold and IoU >= min_iou
    median_side_ratio: float  # sqrt(detected area / labeled area), median over the matched labels
    min_iou: float
    # AP with a detection counted right at IoU >= min_iou: far above AP50, the boxes are found but drawn
    # off the labels (a loose or shifted convention), not missed
    ap_at_min_iou: float

    def describe(self) -> str:
        return (f"{self.matched} of {self.labels} found at IoU >= {self.min_iou:g} (AP {self.ap_at_min_iou:.3f} "
                f"at that IoU), median side ratio {self.median_side_ratio:.2f}")


@dataclass(frozen=True)
class ImageMatches:
    """One class's detections on each image of a set, in the set's order: what AP50 and its intervals are made of."""

    hits: list[np.ndarray]  # per image, a true-positive flag at IoU 0.5 per detection
    scores: list[np.ndarray]  # per image, the detections' scores
    labels: np.ndarray  # per image, how many labels of the class it holds

    def ap50(self, images: Sequence[int]) -> float | None:
        """AP50 over these images (repeats count again); None when they hold no label of the class."""
        labels = int(self.labels[list(images)].sum())
        if not labels:
            return None
        return average_precision(np.concatenate([self.hits[i] for i in images]),
                                 np.concatenate([self.scores[i] for i in images]), labels)


@dataclass(frozen=True)
class ImageSetResult:
    classes: list[ClassMetrics]
    box_scale: BoxScale  # of the class named in evaluate_images' scale_class
    matches: dict[str, ImageMatches]  # by class name


def paired_ap50(a: ImageMatches, b: ImageMatches, resamples: int = RESAMPLES, seed: int = 0) -> PairedDifference | None:
    """B's AP50 minus A's on the same images, with a 95 % interval from drawing the images with replacement and
    scoring both models on each draw. Both must come from the same set (the same labels on the same images)."""
    if not np.array_equal(a.labels, b.labels):
        raise ValueError(f"the two results are not of the same images: {len(a.labels)} images with "
                         f"{int(a.labels.sum())} labels against {len(b.labels)} with {int(b.labels.sum())}")
    return paired_bootstrap(len(a.labels), a.ap50, b.ap50, "images", resamples, seed=seed)


def _names(raw: object, where: Path) -> dict[int, str]:
    if isinstance(raw, list):
        return dict(enumerate(str(name) for name in raw))
    if isinstance(raw, dict):
        return {int(k): str(v) for k, v in raw.items()}
    raise ValueError(f"{where}: 'names' must list the class names")


def load_labeled_set(data_yaml: Path) -> tuple[dict[int, str], list[LabeledImage]]:
    """The class names and the ``val`` images of a YOLO data yaml with their labels.

    ``val`` is a folder of images or a text file listing one image path per line; each image's
    labels are the ``.txt`` of the same name under the sibling ``labels/`` folder.
    """
    names, paths = _read_data_yaml(data_yaml)
    return names, _with_labels(paths, names)


def _read_data_yaml(data_yaml: Path) -> tuple[dict[int, str], list[Path]]:
    if not data_yaml.is_file():
        raise FileNotFoundError(f"data yaml not found: {data_yaml}")
    spec = yaml.safe_load(data_yaml.read_text())
    if not isinstance(spec, dict) or "val" not in spec or "names" not in spec:
        raise ValueError(f"{data_yaml}: a YOLO data yaml needs 'val' (images) and 'names' (classes)")
    names = _names(spec["names"], data_yaml)
    root = Path(spec.get("path") or data_yaml.parent)
    root = root if root.is_absolute() else data_yaml.parent / root
    listing = root / str(spec["val"])
    if listing.is_dir():
        paths = sorted(p for p in listing.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp"})
    elif listing.is_file():
        paths = [Path(line) if Path(line).is_absolute() else root / line for line in listing.read_text().split()]
    else:
        raise FileNotFoundError(f"{data_yaml}: val {listing} is neither a folder nor a list file")
    if not paths:
        raise ValueError(f"{data_yaml}: val {listing} holds no images")
    return names, paths


def _with_labels(paths: list[Path], names: dict[int, str]) -> list[LabeledImage]:
    return [LabeledImage(path, _read_labels(path, names)) for path in paths]


def _read_labels(image: Path, names: dict[int, str]) -> np.ndarray:
    label_file = Path(str(image).replace("/images/", "/labels/")).with_suffix(".txt")
    rows = []
    for number, line in enumerate(label_file.read_text().splitlines() if label_file.is_file() else [], 1):
        values = line.split()
        if not values:
            continue
        try:
            row = [float(v) for v in values]
        except ValueError:
            row = []
        if len(row) != 5 or int(row[0]) not in names:
            raise ValueError(f"{label_file}:{number}: expected 'class cx cy w h' with a class of {sorted(names)}, "
                             f"got {line!r}")
        rows.append(row)
    return np.array(rows, np.float64).reshape(-1, 5)


def match(detected: np.ndarray, scores: np.ndarray, labeled: np.ndarray,
          thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """(detections, thresholds) true-positive flags: in descending score, each detection takes the
    best-overlapping label not yet taken, if that overlap reaches the threshold."""
    hits = np.zeros((len(detected), len(thresholds)), bool)
    if not len(detected) or not len(labeled):
        return hits
    iou = box_iou(detected, labeled)
    order = np.argsort(-scores, kind="stable")
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(len(labeled), bool)
        for d in order:
            overlap = np.where(taken, -1.0, iou[d])
            best = int(overlap.argmax())
            if overlap[best] >= threshold:
                taken[best] = True
                hits[d, t] = True
    return hits


def average_precision(hits: np.ndarray, scores: np.ndarray, labels: int) -> float:
    """COCO's 101-point interpolated AP of detections with true-positive flags ``hits`` (one threshold)."""
    if labels == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    true_positives = np.cumsum(hits[order])
    recall = true_positives / labels
    precision = true_positives / np.arange(1, len(order) + 1)
    # the best precision at this recall or beyond, then sampled at recall 0, 0.01, ..., 1
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.mean([envelope[i] if i < len(envelope) else 0.0 for i in points]))


def ap50_interval(matches: ImageMatches, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The 95 % interval of AP50 over the set's images drawn with replacement.

    A held-out set of a few hundred boxes gives AP50 give or take several hundredths: two models
    whose figures differ by less than that have not been told apart by this set (``paired_ap50``
    tells whether two models on the same images differ).
    """
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        value = matches.ap50(rng.integers(0, len(matches.labels), len(matches.labels)).tolist())
        if value is not None:
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _batches(images: list[LabeledImage]) -> Iterator[list[tuple[LabeledImage, np.ndarray]]]:
    for start in range(0, len(images), BATCH):
        batch = []
        for item in images[start : start + BATCH]:
            image = cv2.imread(str(item.path))
            if image is None:
                raise ValueError(f"cannot read image {item.path}")
            batch.append((item, image))
        yield batch


def _pixels(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    cx, cy, w, h = labels[:, 1] * width, labels[:, 2] * height, labels[:, 3] * width, labels[:, 4] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def evaluate_images(settings: DetectorSettings, data_yaml: Path, scale_class: str = "cigarette",
                    scale_min_iou: float = 0.3) -> ImageSetResult:
    """Per-class AP50, AP50-95 and precision/recall at the settings' thresholds, and how ``scale_class``'s boxes
    compare in size with the labels, for the detector ``settings`` describe on the ``val`` images of ``data_yaml``."""
    names, paths = _read_data_yaml(data_yaml)
    detector = Detector(settings, score_floor=SCORE_FLOOR)
    if names != detector.names:
        raise ValueError(f"{data_yaml}: class names {names} differ from the model's {detector.names}; "
                         "use a data yaml written by `python -m detector.training` (runs/data/heldout-*.yaml)")
    images = _with_labels(paths, names)  # after the names check: a mismatched set fails on its names, not a label row
    thresholds = {detector.person_id: settings.person_conf, detector.cigarette_id: settings.cigarette_conf}
    hits: dict[int, list[np.ndarray]] = {c: [] for c in thresholds}
    scores: dict[int, list[np.ndarray]] = {c: [] for c in thresholds}
    labels_per_image: dict[int, list[int]] = {c: [] for c in thresholds}
    scale_id = next((k for k, v in names.items() if v == scale_class), None)
    if scale_id not in thresholds:
        raise ValueError(f"scale_class must be one of {sorted(names[c] for c in thresholds)}, got {scale_class!r}")
    side_ratios: list[float] = []
    loose_hits: list[np.ndarray] = []  # scale_class's true-positive flags at scale_min_iou
    for batch in _batches(images):
        found_in = detector.detect_batch([image for _, image in batch])
        for (item, image), found in zip(batch, found_in, strict=True):
            height, width = image.shape[:2]
            labeled = _pixels(item.labels, width, height)
            for class_id, threshold in thresholds.items():
                ours: Detections = found.of_class(class_id)
                theirs = labeled[item.labels[:, 0] == class_id]
                hits[class_id].append(match(ours.xyxy, ours.confidence, theirs))
                scores[class_id].append(ours.confidence)
                labels_per_image[class_id].append(len(theirs))
                if class_id == scale_id:
                    side_ratios += _side_ratios(ours[ours.confidence >= threshold], theirs, scale_min_iou)
                    loose_hits.append(match(ours.xyxy, ours.confidence, theirs, np.array([scale_min_iou]))[:, 0])
    labels_of = {c: int(np.sum(per_image)) for c, per_image in labels_per_image.items()}
    matches = {names[c]: ImageMatches([h[:, 0] for h in hits[c]], scores[c], np.array(labels_per_image[c]))
               for c in thresholds}
    rows = []
    for class_id, threshold in thresholds.items():
        class_hits, class_scores = np.concatenate(hits[class_id]), np.concatenate(scores[class_id])
        if not labels_of[class_id]:
            continue
        passing = class_scores >= threshold
        matched = int(class_hits[passing, 0].sum())
        rows.append(ClassMetrics(
            name=names[class_id], images=int(np.count_nonzero(labels_per_image[class_id])),
            instances=labels_of[class_id],
            ap50=average_precision(class_hits[:, 0], class_scores, labels_of[class_id]),
            ap50_interval=ap50_interval(matches[names[class_id]]),
            ap50_95=float(np.mean([average_precision(class_hits[:, t], class_scores, labels_of[class_id])
                                   for t in range(len(IOU_THRESHOLDS))])),
            precision=matched / max(int(passing.sum()), 1), recall=matched / labels_of[class_id],
        ))
    ratio = float(np.median(side_ratios)) if side_ratios else float("nan")
    loose_ap = average_precision(np.concatenate(loose_hits), np.concatenate(scores[scale_id]), labels_of[scale_id])
    return ImageSetResult(rows, BoxScale(labels_of[scale_id], len(side_ratios), ratio, scale_min_iou, loose_ap), matches)


def _side_ratios(found: Detections, labeled: np.ndarray, min_iou: float) -> list[float]:
    """For each label, sqrt(area ratio) of the detection that overlaps it most, if by at least ``min_iou``."""
    if not len(found) or not len(labeled):
        return []
    iou = box_iou(labeled, found.xyxy)
    ratios = []
    for label, overlaps in zip(labeled, iou, strict=True):
        if overlaps.max() >= min_iou:
            best = found.xyxy[overlaps.argmax()]
            area = (best[2] - best[0]) * (best[3] - best[1])
            ratios.append(float(np.sqrt(area / ((label[2] - label[0]) * (label[3] - label[1])))))
    return ratios


def as_dicts(rows: list[ClassMetrics]) -> list[dict[str, object]]:
    def rounded(value: object) -> object:
        if isinstance(value, tuple):
            return [rounded(item) for item in value]
        return round(value, 4) if isinstance(value, float) else value

    return [{k: rounded(v) for k, v in asdict(row).items()} for row in rows]
