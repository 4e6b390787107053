"""Widening a trained network into a larger one: it starts out finding exactly the same boxes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ultralytics.nn.tasks import load_checkpoint

from detector import Detector, DetectorSettings, SecondLookSettings, shipped_model_path
from detector.training.train import TrainingConfig, initial_checkpoint
from detector.training.widen import widen
from tests.detector.test_model import labeled_cigarettes
from tests.support.images import read_image


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_widened_shipped_model_finds_the_same_boxes(tmp_path: Path, shared_dir: Path) -> None:
    config = TrainingConfig(init=str(shipped_model_path("pytorch")), widen_into="yolov5s.yaml",
                            run_dir=tmp_path, name="wide")
    start = initial_checkpoint(config)
    wide_model, _ = load_checkpoint(start)
    assert parameters(wide_model) > 3 * parameters(load_checkpoint(shipped_model_path("pytorch"))[0])

    no_second_look = SecondLookSettings(enabled=False)
    narrow = Detector(DetectorSettings(backend="pytorch", second_look=no_second_look), score_floor=0.05)
    wide = Detector(DetectorSettings(model=start, backend="pytorch", second_look=no_second_look), score_floor=0.05)
    assert wide.names == narrow.names
    images = [read_image(path) for path, _ in labeled_cigarettes(shared_dir)[:8]]
    narrow_found = narrow.detect_batch(images)
    compared = 0
    for theirs, ours in zip(narrow_found, wide.detect_batch(images), strict=True):
        assert len(ours) == len(theirs)
        order_theirs, order_ours = np.argsort(-theirs.confidence), np.argsort(-ours.confidence)
        np.testing.assert_allclose(ours.xyxy[order_ours], theirs.xyxy[order_theirs], atol=0.5)
        np.testing.assert_allclose(ours.confidence[order_ours], theirs.confidence[order_theirs], atol=2e-3)
        assert (ours.class_id[order_ours] == theirs.class_id[order_theirs]).all()
        compared += len(ours)
    assert compared >= 8  # the sample holds persons and cigarettes to compare
    # cigarettes at the shipped threshold among them (the score floor only adds weaker boxes)
    cigarette_conf = narrow.settings.cigarette_conf
    assert sum(int((found.of_class(narrow.cigarette_id).confidence >= cigarette_conf).sum()) for found in narrow_found) > 0


def test_the_two_copies_of_a_channel_share_its_weights_unequally() -> None:
    narrow, _ = load_checkpoint(shipped_model_path("pytorch"))
    wide = widen(narrow, "yolov5s.yaml")
    before = dict(narrow.named_modules())["model.1.conv"].weight  # reads 16 channels; the wide one 32
    after = dict(wide.named_modules())["model.1.conv"].weight
    assert after.shape[1] == 2 * before.shape[1]
    # Output channels 2c and 2c + 1 copy narrow channel c; inputs 2c and 2c + 1 split its weights.
    for copy in (0, 1):
        torch.testing.assert_close(after[copy::2, 0::2] + after[copy::2, 1::2], before, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(after[:, 0::2], after[:, 1::2])  # unequal, so the copies get different gradients


def test_a_network_of_another_width_is_refused() -> None:
    narrow, _ = load_checkpoint(shipped_model_path("pytorch"))
    with pytest.raises(ValueError, match=r"model\.0\.conv.*48 channels against 16.*twice"):
        widen(narrow, "yolov5m.yaml")


def test_the_coco_start_can_be_widened(tmp_path: Path, shared_dir: Path) -> None:
    config = TrainingConfig(shared_dir=shared_dir, widen_into="yolov5s.yaml", run_dir=tmp_path, name="coco-wide")
    model, _ = load_checkpoint(initial_checkpoint(config))
    assert model.yaml["scale"] == "s" and model.names == {0: "person", 1: "cigarette"}
