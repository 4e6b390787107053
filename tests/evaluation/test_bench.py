"""The benchmark's latency rows: the shipped model on every backend against raw inference of the same inputs."""

import pytest

from detector import DetectorSettings
from evaluation.bench import detector_latency
from tests.support.images import read_image


@pytest.mark.parametrize("views", [DetectorSettings(), DetectorSettings(mirror=True, extra_sizes=[640])],
                         ids=["one view", "four views"])
def test_latency_rows_time_the_detector_against_raw_inference_of_its_inputs(shared_dir, views):
    """Every backend, with the views the settings ask for; raw inference builds each input size's views as one batch."""
    image = read_image(next((shared_dir / "datasets" / "cigarette-wpb75" / "test" / "images").iterdir()))
    rows = detector_latency(image, views, threads=2, repeats=3)
    assert [row.backend for row in rows] == ["openvino-f32", "openvino-bf16", "onnx", "pytorch"]
    assert all(row.views == len(views.views()) for row in rows)
    for row in rows:
        assert row.raw_ms > 0 and row.pipeline_ms > 0
        assert row.ratio == pytest.approx(row.pipeline_ms / row.raw_ms, rel=0.01)
