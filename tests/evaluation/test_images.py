"""Image-set accuracy: AP through ultralytics' validator and the box-size comparison with the labels."""

import json
import logging
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from detector import CIGARETTE, Detector
from evaluation.images import box_scale
from service.cli import app
from tests.support.images import read_image

runner = CliRunner()


def labeled_set(shared_dir: Path, target: Path, scale: float, detector: Detector, count: int = 20) -> Path:
    """A small YOLO set of real dataset photos whose cigarette labels are the detector's own boxes grown by ``scale``."""
    folder = shared_dir / "datasets" / "cigarette-wpb75" / "test" / "images"
    if not folder.is_dir():
        pytest.skip("../shared/datasets not found: real dataset images are only available inside the team's workspace")
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir(parents=True)
    listed = []
    for source in sorted(folder.iterdir())[:count]:
        image = read_image(source)
        height, width = image.shape[:2]
        rows = []
        for x1, y1, x2, y2 in detector.detect(image).of_class(CIGARETTE).xyxy:
            w, h = (x2 - x1) * scale / width, (y2 - y1) * scale / height
            rows.append(f"1 {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} {w:.6f} {h:.6f}\n")
        copy = target / "images" / source.with_suffix(".png").name  # lossless: the detector sees the same pixels
        cv2.imwrite(str(copy), image)
        (target / "labels" / source.with_suffix(".txt").name).write_text("".join(rows))
        listed.append(str(copy))
    (target / "list.txt").write_text("\n".join(listed) + "\n")
    data = target / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(target), "train": "list.txt", "val": "list.txt",
                                    "names": {0: "person", 1: "cigarette"}}))
    return data


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def test_box_scale_tells_tight_from_loose_labels(shared_dir, tmp_path, detector):
    same = box_scale(detector, labeled_set(shared_dir, tmp_path / "same", 1.0, detector), CIGARETTE)
    loose = box_scale(detector, labeled_set(shared_dir, tmp_path / "loose", 1.4, detector), CIGARETTE)
    assert same.labels >= 3 and same.matched == same.labels
    assert same.median_side_ratio == pytest.approx(1.0, abs=0.02)
    assert loose.labels == same.labels
    assert loose.median_side_ratio == pytest.approx(1 / 1.4, abs=0.03)


def test_evaluate_images_prints_ap_and_box_scale(shared_dir, tmp_path, detector, caplog):
    data = labeled_set(shared_dir, tmp_path / "set", 1.0, detector)
    out = tmp_path / "images.json"
    ultralytics_logger = logging.getLogger("ultralytics")
    ultralytics_logger.addHandler(caplog.handler)  # ultralytics' logger does not propagate to the root one
    try:
        result = runner.invoke(app, ["evaluate", "images", "--data", str(data), "--json", str(out)])
    finally:
        ultralytics_logger.removeHandler(caplog.handler)
    assert result.exit_code == 0, result.output
    assert "cigarette boxes vs labels" in result.output
    # the report is not buried under the validator's dataset scan, per-class table and timings
    assert not [line for line in caplog.messages if "val:" in line or "Speed:" in line]
    figures = json.loads(out.read_text())
    cigarette = next(row for row in figures["classes"] if row["name"] == "cigarette")
    assert cigarette["ap50"] > 0.9  # the labels are the shipped model's own boxes
    assert figures["cigarette_box_scale"]["median_side_ratio"] == pytest.approx(1.0, abs=0.05)


def test_evaluate_images_rejects_a_set_with_other_class_names(shared_dir, tmp_path, detector):
    data = labeled_set(shared_dir, tmp_path / "set", 1.0, detector, count=1)
    data.write_text(yaml.safe_dump({"path": str(tmp_path / "set"), "train": "list.txt", "val": "list.txt",
                                    "names": {0: "cigarette"}}))
    result = runner.invoke(app, ["evaluate", "images", "--data", str(data)])
    assert result.exit_code == 2 and "class names" in result.output and str(data) in result.output
