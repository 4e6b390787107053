"""Fixtures of the detector tests that train: a small prepared dataset of real photos."""

from pathlib import Path

import pytest

from detector.training.dataset import SourceSplit, prepare
from tests.detector.test_training_data import sample_images, write_split
from tests.support.images import read_image


@pytest.fixture(scope="session")
def prepared(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared dataset of seven real photos: five to train on (two sources), one to validate, one held out."""
    root = tmp_path_factory.mktemp("sets")
    images = {f"photo{i}": read_image(p) for i, p in enumerate(sample_images(shared_dir, 7))}
    names = list(images)
    write_split(root / "a", "train", {n: images[n] for n in names[:3]})
    write_split(root / "b", "train", {n: images[n] for n in names[3:5]})
    write_split(root / "a", "valid", {names[5]: images[names[5]]})
    write_split(root / "a", "test", {names[6]: images[names[6]]})
    sources = [SourceSplit("a", "train", root / "a", "train", "test"), SourceSplit("b", "train", root / "b", "train", "test"),
               SourceSplit("a", "valid", root / "a", "val", "test"), SourceSplit("a", "test", root / "a", "test", "test")]
    out = root / "prepared"
    prepare(sources, out, shared_dir / "weights" / "coco-yolov5n-v6.1.pt")
    return out
