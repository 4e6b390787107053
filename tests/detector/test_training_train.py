"""Training on the CPU: the precision and augmentation the config asks for are the ones the network trains with,
and a schedule cut short resumes from the copies kept outside the run folder."""

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from detector import shipped_model_path
from detector.training.pack import PackSettings, pack
from detector.training.train import TrainingConfig, cpu_has_native_bf16, train


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


def small_run(prepared: Path, tmp_path: Path, **settings: object) -> TrainingConfig:
    """A training config for a few seconds' run on the prepared photos, packed; settings override its fields."""
    config = TrainingConfig.model_validate({
        "shared_dir": tmp_path / "no-shared", "data_dir": tmp_path / "lists", "run_dir": tmp_path / "runs",
        "name": "small", "pack": PackSettings(folder=tmp_path / "pack", prepared_dir=prepared, max_side=320),
        "init": str(shipped_model_path("pytorch")), "imgsz": 160, "batch": 4, "workers": 0, "threads": 2,
        **settings})
    pack(prepared, config.pack)  # type: ignore[arg-type]
    return config


@pytest.mark.parametrize(("precision", "expected", "scale"), [
    # training batches in bf16, validation in f32
    # where the CPU has no native bf16, torch emulates it 10-20x slower, so a bf16 config trains in f32 there
    ("bf16", {torch.bfloat16, torch.float32} if cpu_has_native_bf16() else {torch.float32}, 0.5),
    ("f32", {torch.float32}, 0.9),
])
def test_cpu_training_runs_in_the_precision_and_scale_the_config_names(
        prepared: Path, tmp_path: Path, precision: str, expected: set[torch.dtype], scale: float) -> None:
    config = small_run(prepared, tmp_path, name=precision, epochs=1, cpu_precision=precision, scale=scale)

    run, dtypes = convolution_dtypes_during(lambda: train(config))

    assert dtypes == expected
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["config"]["cpu_precision"] == precision
    assert summary["cpu_precision_used"] == ("bf16" if torch.bfloat16 in expected else "f32")
    checkpoint = torch.load(run / "weights" / "last.pt", weights_only=False)
    assert checkpoint["train_args"]["scale"] == scale  # what ultralytics' own trainer augmented with
    weights = checkpoint["model"].float()
    assert all(torch.isfinite(p).all() for p in weights.parameters())


def test_a_schedule_cut_short_resumes_on_a_new_machine_from_the_kept_copies(prepared: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    config = small_run(prepared, tmp_path, epochs=5, keep_dir=kept)
    config_file = tmp_path / "training.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    # A session that ends during the schedule: the training process is killed once an epoch is kept.
    process = subprocess.Popen([sys.executable, "-m", "detector.training", "--config", str(config_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (kept / "last.pt").is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    kept_epoch = torch.load(kept / "last.pt", weights_only=False)["epoch"]  # ultralytics counts from 0
    assert kept_epoch < 4, "the run finished before it could be cut short"
    assert len((kept / "results.csv").read_text().splitlines()) == kept_epoch + 2  # a header and a row an epoch
    assert torch.load(kept / "best.pt", weights_only=False)["optimizer"] is None  # only last.pt resumes

    shutil.rmtree(config.run_dir)  # the new machine has no runs/
    run = train(config, resume=True)

    assert json.loads((run / "summary.json").read_text())["epochs_completed"] == 5  # the kept rows restored too
    assert torch.load(kept / "last.pt", weights_only=False)["epoch"] == 4  # the copies followed the new epochs


def test_resume_without_a_run_or_a_kept_copy_says_what_is_missing(prepared: Path, tmp_path: Path) -> None:
    config = small_run(prepared, tmp_path, epochs=1, keep_dir=tmp_path / "kept")

    with pytest.raises(FileNotFoundError, match="keep_dir .* holds no last.pt"):
        train(config, resume=True)
