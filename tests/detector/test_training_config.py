"""The committed training configs, and the errors a mistyped one gets before any data is prepared."""

from pathlib import Path

import pytest
from pydantic import ValidationError

import detector.training
from detector.training.train import TrainingConfig

CONFIG_DIR = Path(detector.training.__file__).parent
COMMITTED_CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_the_stage_configs_are_committed() -> None:
    assert {path.name for path in COMMITTED_CONFIGS} >= {"cpu.yaml", "cpu-stage7.yaml", "cpu-stage8.yaml"}


@pytest.mark.parametrize("path", COMMITTED_CONFIGS, ids=lambda path: path.name)
def test_every_committed_config_validates(path: Path) -> None:
    config = TrainingConfig.from_yaml(path)
    assert config.imgsz % 32 == 0 and config.name


def test_a_misspelled_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nimgsize: 640\n")
    with pytest.raises(ValidationError, match="imgsize"):
        TrainingConfig.from_yaml(path)


def test_an_image_size_off_the_stride_says_what_to_use(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text("imgsz: 650\n")
    with pytest.raises(ValidationError, match="multiple of 32.*640"):
        TrainingConfig.from_yaml(path)


def test_a_zero_repeat_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zero.yaml"
    path.write_text("source_repeats:\n  cigarette-wpb75-train: 0\n")
    with pytest.raises(ValidationError, match="source_repeats"):
        TrainingConfig.from_yaml(path)
