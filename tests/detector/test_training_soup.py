"""Averaging fine-tuned checkpoints into one model (a model soup)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ultralytics.nn.tasks import load_checkpoint

from detector import Detector, DetectorSettings, SecondLookSettings, shipped_model_path
from detector.training.soup import average_models, write_soup
from detector.training.train import save_model_checkpoint
from detector.training.widen import widen
from tests.detector.test_model import labeled_cigarettes
from tests.support.images import read_image


def nudged_copy(path: Path, out: Path, seed: int) -> Path:
    """The checkpoint at ``path`` with every weight moved a little, as a second fine-tune would."""
    model, _ = load_checkpoint(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    return save_model_checkpoint(model.half(), out)


def test_every_weight_and_batch_norm_statistic_is_the_mean_of_the_checkpoints(tmp_path: Path) -> None:
    shipped = shipped_model_path("pytorch")
    first = nudged_copy(shipped, tmp_path / "a.pt", seed=1)
    second = nudged_copy(shipped, tmp_path / "b.pt", seed=2)
    soup, _ = load_checkpoint(write_soup([first, second], tmp_path / "soup.pt"))

    a, b = (load_checkpoint(path)[0].state_dict() for path in (first, second))
    moved = 0
    for key, tensor in soup.state_dict().items():
        if tensor.is_floating_point():
            # stored in half precision, as ultralytics stores weights
            torch.testing.assert_close(tensor, (a[key] + b[key]) / 2, rtol=2e-3, atol=2e-3)
            moved += int(not torch.equal(a[key], b[key]))
    assert moved > 100  # the two inputs differ, so the test compares real averages
    assert dict(soup.names) == dict(load_checkpoint(shipped)[0].names)


def test_a_soup_of_one_model_with_itself_finds_the_same_boxes(tmp_path: Path, shared_dir: Path) -> None:
    shipped = shipped_model_path("pytorch")
    soup = write_soup([shipped, shipped], tmp_path / "soup.pt")
    no_second_look = SecondLookSettings(enabled=False)
    original = Detector(DetectorSettings(backend="pytorch", second_look=no_second_look), score_floor=0.05)
    averaged = Detector(DetectorSettings(model=soup, backend="pytorch", second_look=no_second_look), score_floor=0.05)
    images = [read_image(path) for path, _ in labeled_cigarettes(shared_dir)[:4]]
    found = 0
    for theirs, ours in zip(original.detect_batch(images), averaged.detect_batch(images), strict=True):
        assert len(ours) == len(theirs)
        np.testing.assert_allclose(np.sort(ours.confidence), np.sort(theirs.confidence), atol=2e-3)
        found += len(ours)
    assert found > 0


def test_checkpoints_of_different_networks_are_refused(tmp_path: Path) -> None:
    narrow, _ = load_checkpoint(shipped_model_path("pytorch"))
    with pytest.raises(ValueError, match="another architecture"):
        average_models([narrow, widen(narrow, "yolov5s.yaml")])
    with pytest.raises(ValueError, match="at least two"):
        average_models([narrow])
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        write_soup([shipped_model_path("pytorch"), tmp_path / "missing.pt"], tmp_path / "soup.pt")
