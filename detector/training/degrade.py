"""Make a training photo look like a camera frame: lost resolution, motion blur, sensor noise, grayscale
night vision and codec compression, each drawn at random per image.

The photo sets are sharp close-ups; the frames the service sees are compressed video from cameras
that resolve a cigarette in a few blurred pixels. Only pixels change, so the boxes stay as labeled.
"""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class DegradeSettings(BaseModel):
    """How often, and how hard, each kind of camera degradation is applied to a training image."""

    model_config = ConfigDict(extra="forbid")

    resample_p: float = Field(0.5, ge=0, le=1, description="Chance of losing resolution: the image is shrunk and "
                                                            "blown back up, as a low-resolution camera would see it.")
    resample_scale: tuple[float, float] = Field(
        (0.4, 0.9), description="Range of the shrink factor (0-1): 0.4 keeps 40 % of the image side's pixels.")
    motion_blur_p: float = Field(0.25, ge=0, le=1, description="Chance of a straight motion blur in a random "
                                                               "direction (a moving hand or camera).")
    motion_blur_px: tuple[int, int] = Field((3, 9), description="Range of the blur's length in pixels.")
    noise_p: float = Field(0.2, ge=0, le=1, description="Chance of Gaussian sensor noise (dim corridors, night).")
    noise_sigma: tuple[float, float] = Field((2.0, 8.0), description="Range of the noise's standard deviation, "
                                                                     "in 0-255 grey levels.")
    gray_p: float = Field(0.05, ge=0, le=1, description="Chance of a grayscale image (infrared night mode).")
    jpeg_p: float = Field(0.5, ge=0, le=1, description="Chance of re-encoding with JPEG at a low quality, for "
                                                       "the blocking and smearing of a video codec; applied last.")
    jpeg_quality: tuple[int, int] = Field((25, 75), description="Range of the JPEG quality (1-100).")

    @model_validator(mode="after")
    def _ranges_in_order(self) -> DegradeSettings:
        for name in ("resample_scale", "motion_blur_px", "noise_sigma", "jpeg_quality"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: the first value is the lower bound ({low} > {high})")
        if not 0 < self.resample_scale[0] <= self.resample_scale[1] <= 1:
            raise ValueError(f"resample_scale must lie in (0, 1], got {self.resample_scale}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must lie in 1-100, got {self.jpeg_quality}")
        if self.motion_blur_px[0] < 1:
            raise ValueError(f"motion_blur_px must be at least 1, got {self.motion_blur_px}")
        return self


def degrade_image(image: np.ndarray, settings: DegradeSettings, rng: random.Random) -> np.ndarray:
    """A BGR uint8 image degraded as ``settings`` draws it; the same shape and dtype."""
    height, width = image.shape[:2]
    if rng.random() < settings.resample_p:
        factor = rng.uniform(*settings.resample_scale)
        small = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(cv2.resize(image, small, interpolation=cv2.INTER_AREA), (width, height),
                           interpolation=cv2.INTER_LINEAR)
    if rng.random() < settings.motion_blur_p:
        image = cv2.filter2D(image, -1, _motion_kernel(rng.randint(*settings.motion_blur_px), rng.uniform(0, 180)))
    if rng.random() < settings.noise_p:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(*settings.noise_sigma), image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    if rng.random() < settings.gray_p:
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < settings.jpeg_p:
        quality = rng.randint(*settings.jpeg_quality)
        _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR))
    return image


def _motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(line, rotation, (length, length))
    return np.asarray(kernel / max(float(kernel.sum()), 1e-6), np.float32)


class CameraDegradation:
    """An ultralytics transform (it takes and returns the labels dict) that degrades ``labels["img"]``.

    The data loader's workers fork with a copy of it; each seeds its own generator on first use from
    Python's ``random``, which ultralytics seeds per worker.
    """

    def __init__(self, settings: DegradeSettings) -> None:
        self.settings = settings
        self._rng: random.Random | None = None

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        if self._rng is None:
            self._rng = random.Random(random.getrandbits(64))
        labels["img"] = degrade_image(labels["img"], self.settings, self._rng)
        return labels
