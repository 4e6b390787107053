"""Dataset preparation on a small real sample: near-duplicates across splits, class ids, person pseudo-labels."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from detector.training.dataset import SourceSplit, content_hash, prepare
from tests.support.images import read_image


def sample_images(shared_dir: Path, count: int) -> list[Path]:
    folder = shared_dir / "datasets" / "cigarette-wpb75" / "test" / "images"
    if not folder.is_dir():
        pytest.skip("../shared/datasets not found: real dataset images are only available inside the team's workspace")
    return sorted(folder.iterdir())[:count]


def letterboxed(image: np.ndarray) -> np.ndarray:
    """The same picture as the letterboxed set stores it: shrunk, centred on grey, re-encoded."""
    small = cv2.resize(image, (640, 400))
    canvas = np.full((640, 640, 3), 114, np.uint8)
    canvas[120:520] = small
    return np.asarray(cv2.imdecode(cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR))


def write_split(root: Path, split: str, images: dict[str, np.ndarray], label: str = "0 0.5 0.5 0.05 0.02\n") -> None:
    (root / split / "images").mkdir(parents=True)
    (root / split / "labels").mkdir(parents=True)
    for name, image in images.items():
        cv2.imwrite(str(root / split / "images" / f"{name}.jpg"), image)
        (root / split / "labels" / f"{name}.txt").write_text(label)


def test_content_hash_sees_through_letterboxing_and_reencoding(shared_dir):
    first, second = (read_image(p) for p in sample_images(shared_dir, 2))
    distance = lambda a, b: bin(content_hash(a) ^ content_hash(b)).count("1")  # noqa: E731
    assert distance(first, letterboxed(first)) <= 4
    assert distance(first, second) > 10


def test_prepare_keeps_held_out_images_out_of_training(shared_dir, tmp_path):
    paths = sample_images(shared_dir, 5)
    images = {p.stem[:12]: read_image(p) for p in paths}
    names = list(images)
    stretched, letterboxed_set = tmp_path / "stretched", tmp_path / "letterboxed"
    write_split(stretched, "test", {n: images[n] for n in names[:2]})
    write_split(stretched, "train", {n: images[n] for n in names[2:]} | {"copy": images[names[0]]})
    write_split(letterboxed_set, "train", {"lb-copy": letterboxed(images[names[1]]), "lb-new": letterboxed(images[names[4]])})
    write_split(stretched, "valid", {"v": images[names[3]]})
    sources = [SourceSplit("s", "train", stretched, "train", "test"), SourceSplit("s", "valid", stretched, "val", "test"),
               SourceSplit("s", "test", stretched, "test", "test"), SourceSplit("l", "train", letterboxed_set, "train", "test")]
    out = tmp_path / "out"
    summary = prepare(sources, out, shared_dir / "weights" / "coco-yolov5n-v6.1.pt")

    train = (out / "train.txt").read_text().split()
    train_names = sorted(Path(p).stem for p in train)
    # the exact copy and the letterboxed copy of held-out images are gone; the val image is kept out of train too
    assert "copy" not in train_names and "lb-copy" not in train_names and names[3] not in train_names
    assert summary["dropped"]["train_near_duplicate_of_heldout"] == 3  # copy, lb-copy, and the val image's twin
    assert summary["images"] == {"train": 2, "val": 1, "s-test": 2}
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "person", 1: "cigarette"} and (out / "heldout-s-test.yaml").is_file()
    for image in train:
        rows = [line.split() for line in Path(image.replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt").read_text().splitlines()]
        assert ["1", "0.500000", "0.500000", "0.050000", "0.020000"] in rows  # the cigarette, moved to class 1
        for row in rows:
            cx, cy, w, h = map(float, row[1:])
            assert cx - w / 2 >= 0 and cx + w / 2 <= 1.000001 and cy - h / 2 >= 0 and cy + h / 2 <= 1.000001
    assert sum(summary["person_boxes_pseudo"].values()) >= 1  # people in these photos get pseudo-labeled
    # a second run reuses the cached hashes and labels and gives the same lists
    shutil.rmtree(out / "images")
    assert prepare(sources, out, shared_dir / "weights" / "coco-yolov5n-v6.1.pt") == summary


def test_source_repeats_weigh_a_source_up_and_unknown_names_are_refused(shared_dir, tmp_path):
    paths = sample_images(shared_dir, 3)
    images = {p.stem[:12]: read_image(p) for p in paths}
    names = list(images)
    small, large = tmp_path / "small", tmp_path / "large"
    write_split(small, "train", {names[0]: images[names[0]]})
    write_split(large, "train", {n: images[n] for n in names[1:]})
    sources = [SourceSplit("small", "train", small, "train", "test"), SourceSplit("large", "train", large, "train", "test")]
    checkpoint = shared_dir / "weights" / "coco-yolov5n-v6.1.pt"

    summary = prepare(sources, tmp_path / "out", checkpoint, repeats={"small-train": 3})
    train = (tmp_path / "out" / "train.txt").read_text().split()
    assert sorted(Path(p).stem for p in train) == sorted([names[0]] * 3 + names[1:])
    assert summary["images"]["train"] == 3 and summary["train_list_entries"] == 5
    # the fit lists name each training source's images once, for `smokewatch evaluate images`
    fit = yaml.safe_load((tmp_path / "out" / "fit-small-train.yaml").read_text())
    assert fit["val"] == "fit-small-train.txt"
    assert [Path(p).stem for p in (tmp_path / "out" / "fit-small-train.txt").read_text().split()] == [names[0]]

    with pytest.raises(ValueError, match="smal-train.*training sources: large-train, small-train"):
        prepare(sources, tmp_path / "out", checkpoint, repeats={"smal-train": 2})
