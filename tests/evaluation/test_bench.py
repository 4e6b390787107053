"""The benchmark's latency rows: the shipped model on every backend against raw inference of the same inputs."""

import shutil

import pytest

from detector import DetectorSettings, shipped_model_path
from evaluation.bench import detector_latency
from tests.support.cpu import openvino_cpu_has_bf16
from tests.support.images import read_image


@pytest.mark.parametrize("views", [DetectorSettings(), DetectorSettings(mirror=True, extra_sizes=[640])],
                         ids=["one view", "four views"])
def test_latency_rows_time_the_detector_against_raw_inference_of_its_inputs(shared_dir, views):
    """Every backend, with the views the settings ask for; raw inference builds each input size's views as one batch."""
    image = read_image(next((shared_dir / "datasets" / "cigarette-wpb75" / "test" / "images").iterdir()))
    rows = detector_latency(image, views, threads=2, repeats=3)
    assert [row.backend for row in rows] == ["openvino-f32", "openvino-bf16", "onnx", "pytorch"]
    assert [row.computes for row in rows] == ["f32", "bf16" if openvino_cpu_has_bf16() else "f32", "f32", "f32"]
    assert all(row.views == len(views.views()) for row in rows)
    for row in rows:
        assert row.raw_ms > 0 and row.pipeline_ms > 0
        assert row.ratio == pytest.approx(row.pipeline_ms / row.raw_ms, rel=0.01)


def test_latency_rows_time_a_candidate_through_its_exports(shared_dir, tmp_path):
    """A trained .pt with the ONNX and OpenVINO exports that detector.training.export writes beside it."""
    weights = tmp_path / "candidate.pt"
    shutil.copyfile(shipped_model_path("pytorch"), weights)
    shutil.copyfile(shipped_model_path("onnx"), tmp_path / "candidate.onnx")
    shutil.copytree(shipped_model_path("openvino"), tmp_path / "candidate_openvino_model")
    image = read_image(next((shared_dir / "datasets" / "cigarette-wpb75" / "test" / "images").iterdir()))
    rows = detector_latency(image, DetectorSettings(), threads=2, repeats=3, weights=weights)
    assert [(row.backend, row.model) for row in rows] == [
        ("openvino-f32", "candidate_openvino_model"), ("openvino-bf16", "candidate_openvino_model"),
        ("onnx", "candidate.onnx"), ("pytorch", "candidate.pt")]
    assert all(row.raw_ms > 0 and row.pipeline_ms > 0 for row in rows)
