"""Training on the CPU: the precision and augmentation the config asks for are the ones the network trains with."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from detector import shipped_model_path
from detector.training.pack import PackSettings, pack
from detector.training.train import TrainingConfig, train


def convolution_dtypes_during(run: Callable[[], Path]) -> tuple[Path, set[torch.dtype]]:
    """Run, recording the dtype of every convolution's output while it runs (forward hooks on all modules)."""
    seen: set[torch.dtype] = set()

    def record(module: torch.nn.Module, inputs: object, output: object) -> None:
        if isinstance(module, torch.nn.Conv2d) and isinstance(output, torch.Tensor):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        return run(), seen
    finally:
        handle.remove()


@pytest.mark.parametrize(("precision", "expected", "scale"), [
    ("bf16", {torch.bfloat16, torch.float32}, 0.5),  # training batches in bf16, validation in f32
    ("f32", {torch.float32}, 0.9),
])
def test_cpu_training_runs_in_the_precision_and_scale_the_config_names(
        prepared: Path, tmp_path: Path, precision: str, expected: set[torch.dtype], scale: float) -> None:
    config = TrainingConfig.model_validate({
        "shared_dir": tmp_path / "no-shared", "data_dir": tmp_path / "lists", "run_dir": tmp_path / "runs",
        "name": precision, "pack": PackSettings(folder=tmp_path / "pack", prepared_dir=prepared, max_side=320),
        "init": str(shipped_model_path("pytorch")), "imgsz": 160, "epochs": 1, "batch": 4, "workers": 0,
        "threads": 2, "cpu_precision": precision, "scale": scale})
    pack(prepared, config.pack)  # type: ignore[arg-type]

    run, dtypes = convolution_dtypes_during(lambda: train(config))

    assert dtypes == expected
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["config"]["cpu_precision"] == precision
    checkpoint = torch.load(run / "weights" / "last.pt", weights_only=False)
    assert checkpoint["train_args"]["scale"] == scale  # what ultralytics' own trainer augmented with
    weights = checkpoint["model"].float()
    assert all(torch.isfinite(p).all() for p in weights.parameters())
