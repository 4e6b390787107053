"""Reading the real dataset pictures the tests use."""

from pathlib import Path

import cv2
import numpy as np


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read test image {path}")
    return np.asarray(image)
