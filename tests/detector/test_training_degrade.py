"""Camera degradation of training photos: what each kind does to a real photo, its settings' errors, and that
the trainer feeds the network degraded images in every epoch, the ones without mosaic included."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from detector.training.degrade import DegradeSettings, degrade_image
from detector.training.train import train
from tests.detector.test_training_data import sample_images
from tests.detector.test_training_train import small_run
from tests.support.images import read_image

NONE = {"resample_p": 0, "motion_blur_p": 0, "noise_p": 0, "gray_p": 0, "jpeg_p": 0}


@pytest.fixture(scope="module")
def photo(shared_dir: Path) -> np.ndarray:
    return read_image(sample_images(shared_dir, 1)[0])


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: falls as fine detail is lost."""
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_with_every_chance_zero_the_photo_is_untouched(photo: np.ndarray) -> None:
    out = degrade_image(photo.copy(), DegradeSettings.model_validate(NONE), random.Random(0))
    assert np.array_equal(out, photo)


def blockiness(image: np.ndarray) -> float:
    """Mean jump between columns across JPEG's 8-pixel block edges over the mean jump inside blocks."""
    jumps = np.abs(np.diff(image.astype(float).mean(axis=2), axis=1)).mean(axis=0)
    at_edges = np.arange(len(jumps)) % 8 == 7
    return float(jumps[at_edges].mean() / jumps[~at_edges].mean())


@pytest.mark.parametrize("kind", [
    {"resample_p": 1, "resample_scale": (0.3, 0.3)},
    {"motion_blur_p": 1, "motion_blur_px": (9, 9)},
])
def test_lost_resolution_and_motion_blur_lose_detail(photo: np.ndarray, kind: dict[str, object]) -> None:
    out = degrade_image(photo.copy(), DegradeSettings.model_validate({**NONE, **kind}), random.Random(0))

    assert out.shape == photo.shape and out.dtype == np.uint8
    assert sharpness(out) < 0.7 * sharpness(photo)


def test_compression_leaves_block_edges(photo: np.ndarray) -> None:
    out = degrade_image(photo.copy(), DegradeSettings.model_validate({**NONE, "jpeg_p": 1, "jpeg_quality": (10, 10)}),
                        random.Random(0))
    assert blockiness(out) > 1.5 * blockiness(photo)  # the photos are JPEGs too, at a far higher quality


def test_noise_and_grayscale(photo: np.ndarray) -> None:
    noisy = degrade_image(photo.copy(), DegradeSettings.model_validate({**NONE, "noise_p": 1,
                                                                       "noise_sigma": (8, 8)}), random.Random(0))
    difference = noisy.astype(float) - photo.astype(float)
    assert 4 < difference.std() < 10  # clipping at 0 and 255 takes a little off sigma 8

    gray = degrade_image(photo.copy(), DegradeSettings.model_validate({**NONE, "gray_p": 1}), random.Random(0))
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])


def test_the_draws_follow_the_generator(photo: np.ndarray) -> None:
    settings = DegradeSettings()
    first = degrade_image(photo.copy(), settings, random.Random(7))
    assert np.array_equal(first, degrade_image(photo.copy(), settings, random.Random(7)))
    assert any(not np.array_equal(first, degrade_image(photo.copy(), settings, random.Random(seed)))
               for seed in range(8, 12))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("resample_scale", (0.9, 0.4), "first value is the lower bound"),
    ("resample_scale", (0.0, 0.5), r"resample_scale must lie in \(0, 1\]"),
    ("jpeg_quality", (0, 50), "jpeg_quality must lie in 1-100"),
    ("jpeg_p", 1.5, "less than or equal to 1"),
    ("blur", 0.5, "Extra inputs are not permitted"),
])
def test_bad_settings_say_what_to_fix(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DegradeSettings.model_validate({field: value})


def test_the_network_trains_on_degraded_images_with_and_without_mosaic(prepared: Path, tmp_path: Path) -> None:
    # Grayscale alone, every time: then each training input has three equal channels, which no photo here has.
    config = small_run(prepared, tmp_path, epochs=2, close_mosaic=1, degrade={**NONE, "gray_p": 1})
    gray_inputs: dict[bool, list[bool]] = {True: [], False: []}  # by training mode

    def record(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        image = inputs[0]
        # The network's first layer, seeing a picture (ultralytics also runs blank tensors through it).
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == 3 and image.std() > 0:
            gray = bool(torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2]))
            gray_inputs[module.training].append(gray)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        train(config)
    finally:
        handle.remove()

    assert len(gray_inputs[True]) >= 2 and all(gray_inputs[True])  # both epochs, the second without mosaic
    assert gray_inputs[False] and not any(gray_inputs[False])  # validation sees the photos as they are
