import numpy as np
import pytest

from detector import Detections


def test_rows_must_agree():
    with pytest.raises(ValueError, match="one row per box"):
        Detections(np.zeros((2, 4)), np.zeros(1), np.zeros(2))


def test_select_merge_and_rows():
    d = Detections(np.array([[0, 0, 10, 10], [5, 5, 8, 8]]), np.array([0.9, 0.4]), np.array([0, 1]))
    assert len(d.of_class("cigarette")) == 1 and d.of_class(0).confidence.tolist() == pytest.approx([0.9])
    merged = Detections.merge([d, d[np.array([1])]])
    assert len(merged) == 3 and merged.tracker_id.tolist() == [-1, -1, -1]
    assert merged.to_rows()[2] == {"class": "cigarette", "confidence": 0.4, "box": [5.0, 5.0, 8.0, 8.0], "track_id": -1}
    with pytest.raises(KeyError, match="no class 'dog'"):
        d.of_class("dog")
