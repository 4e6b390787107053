"""The GPU pack: real dataset images prepared, packed into parts, unpacked into lists, and trained from."""

import json
import sys
import tarfile
from pathlib import Path

import cv2
import pytest
import torch
from ultralytics.data.utils import img2label_paths

from detector import shipped_model_path
from detector.training.pack import IncompletePackError, PackSettings, lists_from_pack, pack
from detector.training.train import TrainingConfig, step_from_flags, train, write_pack

REPO = Path(__file__).resolve().parents[2]


def payload_bytes(archive: Path) -> int:
    with tarfile.open(archive) as tar:
        return sum(m.size for m in tar.getmembers() if not m.name.endswith("manifest.json"))


def test_a_pack_carries_every_listed_image_and_label_in_equal_parts(prepared: Path, tmp_path: Path) -> None:
    settings = PackSettings(folder=tmp_path / "pack", max_side=320, webp_quality=60, part_mib=0.012)
    archives = pack(prepared, settings)

    sizes = [payload_bytes(a) for a in archives]
    assert len(archives) >= 2 and all(size <= 0.012 * 2**20 for size in sizes)
    assert min(sizes) > max(sizes) / 3  # about equal, not full parts and a crumb
    summary = lists_from_pack(settings.folder, tmp_path / "lists", repeats={"a-train": 2})
    train = (tmp_path / "lists" / "train.txt").read_text().split()
    val = (tmp_path / "lists" / "val.txt").read_text().split()
    assert len(train) == 3 * 2 + 2 and len(set(train)) == 5 and len(val) == 1
    assert summary["images"] == {"train": 5, "val": 1} and summary["pack"]["parts"] == len(archives)
    assert summary["prepared"]["images"]["a-test"] == 1  # the held-out image stays here, named in the summary

    listed: list[str | Path] = [*train, *val]
    for image_file, label_file in zip(listed, img2label_paths(listed), strict=True):
        image = cv2.imread(str(image_file))
        assert image is not None and max(image.shape[:2]) == 320  # the 640 px photos, shrunk
        source, stem = Path(image_file).parent.name, Path(image_file).stem
        assert Path(label_file).read_text() == (prepared / "labels" / source / f"{stem}.txt").read_text()
        assert "1 0.500000 0.500000 0.050000 0.020000" in Path(label_file).read_text()


def test_a_missing_part_or_an_unknown_source_is_named(prepared: Path, tmp_path: Path) -> None:
    settings = PackSettings(folder=tmp_path / "pack", max_side=320, part_mib=0.012)
    archives = pack(prepared, settings)
    archives[1].unlink()
    with pytest.raises(IncompletePackError, match=f"part-2 of {len(archives)} missing"):
        lists_from_pack(settings.folder, tmp_path / "lists")
    with pytest.raises(IncompletePackError, match="no pack in"):
        lists_from_pack(tmp_path / "elsewhere", tmp_path / "lists")

    pack(prepared, settings)
    with pytest.raises(ValueError, match="c-train.*training sources: a-train, b-train"):
        lists_from_pack(settings.folder, tmp_path / "lists", repeats={"c-train": 2})


def test_training_from_a_pack_runs_without_polars(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The device machine has neither ../shared nor polars (a wheel too large to carry there)."""
    config = TrainingConfig(
        shared_dir=tmp_path / "no-shared", data_dir=tmp_path / "lists", run_dir=tmp_path / "runs", name="gpu",
        pack=PackSettings(folder=tmp_path / "pack", prepared_dir=prepared, max_side=320),
        init=str(shipped_model_path("pytorch")), imgsz=160, epochs=1, batch=4, workers=0, threads=2)
    pack(prepared, config.pack)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "polars", None)  # import polars now raises ImportError, as it would there

    run = train(config)

    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_completed"] == 1 and summary["data"]["pack"]["parts"] == 1
    checkpoint = torch.load(run / "weights" / "last.pt", weights_only=False)
    assert len(checkpoint["train_results"]["metrics/mAP50(B)"]) == 1  # results.csv, read without polars


def test_write_pack_names_what_it_lacks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no pack: section"):
        write_pack(TrainingConfig())
    settings = PackSettings(folder=tmp_path / "pack", prepared_dir=tmp_path / "prepared")
    config = TrainingConfig(shared_dir=tmp_path / "no-shared", pack=settings)
    with pytest.raises(FileNotFoundError, match="no-shared/datasets/cigarette-wpb75/train/images"):
        write_pack(config)
    assert not (tmp_path / "pack").exists()


def test_the_command_line_runs_one_step_and_refuses_two() -> None:
    assert step_from_flags() == "train"
    assert [step_from_flags(resume=True), step_from_flags(pack=True), step_from_flags(prepare=True)] == ["resume", "pack", "prepare"]
    with pytest.raises(ValueError, match="--resume and --pack are different steps: give one"):
        step_from_flags(resume=True, pack=True)


def test_the_gpu_config_needs_only_what_the_calls_carry() -> None:
    config = TrainingConfig.from_yaml(REPO / "detector" / "training" / "gpu.yaml")
    assert config.pack is not None and config.device == "0"
    # The start travels with the repository: a tracked file, not something under runs/.
    assert Path(config.init).parts[0] == "models" and (REPO / config.init).is_file()


def test_the_device_wheels_are_the_pinned_versions() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return {name.lower().replace("_", "-"): version for name, version in (line.split("==") for line in lines if line)}

    wheels = pins(REPO / "detector" / "training" / "gpu-wheels.txt")
    constraints = pins(REPO / "constraints.txt")
    assert {"ultralytics", "pydantic", "lap"} <= set(wheels)
    assert {name: constraints.get(name) for name in wheels} == wheels
