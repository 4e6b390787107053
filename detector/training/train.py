"""Train the person + cigarette detector: prepare data, fine-tune, write the run summary."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel, load_checkpoint
from ultralytics.utils.torch_utils import strip_optimizer

from detector.training.coco_yolov5 import load_yolov5_state_dict, transfer_backbone
from detector.training.dataset import CLASS_NAMES, default_sources, prepare
from detector.training.degrade import CameraDegradation, DegradeSettings
from detector.training.pack import PackSettings, lists_from_pack, pack
from detector.training.widen import widen

log = logging.getLogger(__name__)


class TrainingConfig(BaseModel):
    """Everything one training run depends on; saved beside the weights."""

    model_config = ConfigDict(extra="forbid")

    shared_dir: Path = Field(Path("../shared"), description="Folder with datasets/ and weights/ (the team's shared data).")
    extra_dataset_dir: Path | None = Field(
        None, description="The extracted datasetrokok15/ folder (train/valid/test); None trains on the shared sets only.")
    data_dir: Path = Field(Path("runs/data"), description="Where the merged dataset (links, labels, lists) is written; "
                                                          "with pack set, only the lists of the pack's images.")
    pack: PackSettings | None = Field(
        None, description="Train from a pack of the prepared images (detector/training/pack.py) instead of preparing "
                          "them from shared_dir: for a borrowed GPU machine, which sees the repository alone. "
                          "--pack writes it here; detector/training/GPU.md carries it there.")
    run_dir: Path = Field(Path("runs/train"), description="Parent folder of training runs.")
    name: str = Field("smokewatch", description="Run name; weights land in run_dir/name/weights/.")
    init: str = Field("coco-yolov5n", description="'coco-yolov5n' transfers the shared COCO backbone; else a .pt to continue from.")
    architecture: str = Field("yolov5n.yaml", description="ultralytics model yaml used with init 'coco-yolov5n'.")
    widen_into: str | None = Field(
        None, description="An ultralytics model yaml with twice the start's channels (yolov5s.yaml for yolov5n): "
                          "the start's weights (init, or the COCO transfer) are spread over it so that it begins "
                          "by computing the same function (detector/training/widen.py), and training goes on in "
                          "the wider network.")
    imgsz: int = Field(512, ge=160, le=1280, description="Training image size in pixels (multiple of 32).")
    epochs: int = Field(6, ge=1, description="Epochs; with hours set, ultralytics re-plans this after the first epoch.")
    hours: float | None = Field(None, gt=0, description="Wall-clock budget; overrides epochs when set.")
    batch: int = Field(16, ge=1, description="Images per batch.")
    workers: int = Field(2, ge=0, description="Data loader processes.")
    cache: bool = Field(False, description="Hold the decoded training images in memory: on a GPU the loader, not the "
                                           "GPU, sets the pace; on 2 CPU cores the network does.")
    device: str = Field("cpu", description="'cpu' or a CUDA index such as '0'.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None: every core (ultralytics would "
                                                        "leave one idle, which halves CPU training on 2 cores).")
    cpu_precision: Literal["f32", "bf16"] = Field(
        "f32", description="Arithmetic of training on the CPU. 'bf16' runs each batch's forward pass and loss under "
                           "torch's CPU autocast (convolutions in bfloat16, weights and optimizer kept in f32): "
                           "1.55x faster per batch on this project's CPU with AVX-512 BF16 (models/HISTORY.md, stage 20). "
                           "'f32' trains as ultralytics does on a CPU. A CPU without native bf16 (AVX-512 BF16 or "
                           "AMX) trains 'bf16' in f32, with a warning: emulated there, bf16 ran 10-20x slower. A GPU "
                           "uses ultralytics' own AMP instead.")
    optimizer: str = Field("auto", description="ultralytics optimizer name; 'auto' picks AdamW with its own rate on short runs.")
    lr0: float = Field(0.01, gt=0, description="Initial learning rate; ignored by optimizer 'auto'.")
    warmup_epochs: float = Field(0.5, ge=0, description="Learning-rate warm-up; short because CPU runs are few epochs.")
    close_mosaic: int = Field(1, ge=0, description="Final epochs trained without mosaic augmentation.")
    scale: float = Field(0.5, ge=0, lt=1, description="Random resize of each training image by a gain in "
                                                     "[1 - scale, 1 + scale] (ultralytics' default 0.5). Larger "
                                                     "values show the network smaller cigarettes, as in wide "
                                                     "camera views, than the close-up photos hold.")
    degrade: DegradeSettings | None = Field(
        None, description="Make each training image look like a camera frame (lost resolution, motion blur, noise, "
                          "grayscale, JPEG compression; detector/training/degrade.py) with the chances given here; "
                          "None trains on the photos as they are.")
    person_conf: float = Field(0.35, gt=0, lt=1, description="Score above which the COCO model's persons become labels.")
    source_repeats: dict[str, PositiveInt] = Field(
        default_factory=dict, description="Times each training source (e.g. cigarette-wpb75-train) is listed per "
                                          "epoch; unnamed sources once. Weighs a small source up, e.g. one whose box "
                                          "convention the larger sources outvote.")
    dedup_distance: int = Field(4, ge=0, le=64, description="Max dHash Hamming distance treated as a near-duplicate.")
    seed: int = Field(0, description="Random seed for ultralytics.")
    keep_dir: Path | None = Field(
        None, description="A folder outside run_dir (e.g. in git, models/in-training/NAME/) that holds copies of "
                          "the run's last.pt, best.pt (without optimizer state) and results.csv, refreshed after "
                          "every epoch, so that a schedule longer than one session survives a machine that loses "
                          "runs/; --resume restores them from here when run_dir has no last.pt.")

    @field_validator("imgsz")
    @classmethod
    def _stride_multiple(cls, imgsz: int) -> int:
        # ultralytics would silently round it, and the run summary would name a size never trained.
        if imgsz % 32:
            raise ValueError(f"imgsz must be a multiple of 32 (the network's stride), e.g. {imgsz // 32 * 32}")
        return imgsz

    @classmethod
    def from_yaml(cls, path: Path) -> TrainingConfig:
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})


def initial_checkpoint(config: TrainingConfig) -> Path:
    """An ultralytics checkpoint to fine-tune from: the COCO backbone transferred or a given .pt, widened
    into ``widen_into`` when that is set."""
    if config.init == "coco-yolov5n":
        model = DetectionModel(config.architecture, nc=len(CLASS_NAMES), verbose=False)
        copied = transfer_backbone(model, load_yolov5_state_dict(config.shared_dir / "weights" / "coco-yolov5n-v6.1.pt"))
        log.info("transferred %d COCO YOLOv5n tensors into %s", copied, config.architecture)
        model.names = CLASS_NAMES
    else:
        given = Path(config.init)
        if not given.is_file():
            raise FileNotFoundError(f"init checkpoint not found: {given}")
        if config.widen_into is None:
            return given
        model, _ = load_checkpoint(given)
    if config.widen_into is not None:
        model = widen(model, config.widen_into)
        log.info("widened %s into %s", config.init, config.widen_into)
    return save_model_checkpoint(model, config.run_dir / f"{config.name}-init.pt")


def save_model_checkpoint(model: DetectionModel, path: Path, **metadata: Any) -> Path:
    """Save ``model`` as a checkpoint ultralytics loads and fine-tunes: the fields its loaders read, no optimizer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {}, "epoch": -1, "date": time.strftime("%Y-%m-%d"), **metadata}, path)
    return path


def prepare_data(config: TrainingConfig) -> dict[str, Any]:
    """Write the lists and data.yaml ultralytics trains from into data_dir; return the data summary."""
    if config.pack is not None:
        return lists_from_pack(config.pack.folder, config.data_dir, config.source_repeats)
    return prepare(default_sources(config.shared_dir, config.extra_dataset_dir), config.data_dir,
                   config.shared_dir / "weights" / "coco-yolov5n-v6.1.pt",
                   dedup_distance=config.dedup_distance, person_conf=config.person_conf,
                   repeats=config.source_repeats)


def write_pack(config: TrainingConfig) -> list[Path]:
    """Prepare the data here (into the pack's prepared_dir) and pack it for the GPU machine; return the parts."""
    if config.pack is None:
        raise ValueError("this config has no pack: section to write (see detector/training/gpu.yaml)")
    prepare_data(preparing_here(config))
    return pack(config.pack.prepared_dir, config.pack)


def preparing_here(config: TrainingConfig) -> TrainingConfig:
    """The config that prepares the data from the source sets on this machine: into the pack's prepared_dir
    where the config trains from a pack (which only the GPU machine unpacks)."""
    if config.pack is None:
        return config
    return config.model_copy(update={"pack": None, "data_dir": config.pack.prepared_dir})


Step = Literal["train", "resume", "pack", "prepare"]


def step_from_flags(resume: bool = False, pack: bool = False, prepare: bool = False) -> Step:
    """The one step the command line's flags ask for; more than one is refused."""
    flags: dict[Step, bool] = {"resume": resume, "pack": pack, "prepare": prepare}
    given = [step for step, flag in flags.items() if flag]
    if len(given) > 1:
        raise ValueError(f"--{' and --'.join(given)} are different steps: give one (none trains from the start)")
    return given[0] if given else "train"


def run_step(config: TrainingConfig, step: Step) -> list[str]:
    """What ``smokewatch train`` and ``python -m detector.training`` do; return the lines they print."""
    if step == "pack":
        return [f"{part}: {part.stat().st_size / 2**20:.1f} MiB" for part in write_pack(config)]
    if step == "prepare":
        local = preparing_here(config)
        summary = prepare_data(local)
        lists = ", ".join(f"{key} {count}" for key, count in summary["images"].items())
        return [f"images: {lists}", f"written to {local.data_dir}: {', '.join(summary['yaml_files'])}"]
    return [f"run folder: {train(config, resume=step == 'resume')}"]


def train(config: TrainingConfig, resume: bool = False) -> Path:
    """Run (or resume) training; return the run folder, which holds weights/ and summary.json."""
    run = config.run_dir / config.name
    last = run / "weights" / "last.pt"
    data_summary = prepare_data(config)
    started = time.time()
    if resume:
        if not last.is_file() and config.keep_dir is not None and (config.keep_dir / "last.pt").is_file():
            restore_kept(config.keep_dir, run)
        if not last.is_file():
            kept = f" and keep_dir ({config.keep_dir}) holds no last.pt" if config.keep_dir is not None else ""
            raise FileNotFoundError(f"nothing to resume: {last} does not exist{kept}")
        _cpu_settings(YOLO(str(last)), config).train(resume=True, trainer=trainer_for(config))
    else:
        model = _cpu_settings(YOLO(str(initial_checkpoint(config))), config)
        model.train(
            data=str((config.data_dir / "data.yaml").resolve()), imgsz=config.imgsz, epochs=config.epochs,
            time=config.hours, batch=config.batch, workers=config.workers, device=config.device,
            cache="ram" if config.cache else False,
            project=str(config.run_dir.resolve()), name=config.name, exist_ok=True, seed=config.seed,
            optimizer=config.optimizer, lr0=config.lr0, warmup_epochs=config.warmup_epochs,
            close_mosaic=config.close_mosaic, scale=config.scale, plots=False, trainer=trainer_for(config),
        )
    write_summary(run, config, data_summary, time.time() - started)
    return run


class Trainer(DetectionTrainer):
    """ultralytics' detection trainer, with the training images degraded as camera frames where a run asks for
    it, and reading its results.csv with the standard library.

    ultralytics imports polars only for that (into every checkpoint it saves), and polars is a 54 MB
    wheel: more than one call to the borrowed GPU machine can carry beside the repository.
    """

    # ultralytics makes the trainer itself from the class it is given, so a run's settings ride on the class.
    degradation: CameraDegradation | None = None

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
        dataset = super().build_dataset(img_path, mode, batch)
        if mode == "train":
            self._add_degradation(dataset)
        return dataset

    def _close_dataloader_mosaic(self) -> None:
        super()._close_dataloader_mosaic()
        self._add_degradation(self.train_loader.dataset)  # closing mosaic rebuilt the transforms without it

    def _add_degradation(self, dataset: Any) -> None:
        if self.degradation is not None:
            dataset.transforms.insert(-1, self.degradation)  # on the finished image, before it is formatted

    def read_results_csv(self) -> dict[str, list[float]]:
        if not self.csv.is_file():
            return {}
        with self.csv.open(newline="") as file:
            rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(file)]
        return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def trainer_for(config: TrainingConfig) -> type[Trainer]:
    """The trainer class ultralytics should make for this run."""
    if config.degrade is None:
        return Trainer
    return type("DegradingTrainer", (Trainer,), {"degradation": CameraDegradation(config.degrade)})


def _cpu_settings(model: YOLO, config: TrainingConfig) -> YOLO:
    """Every core, and bf16 where the config asks for it, for training on the CPU.

    ultralytics sets torch to cores - 1 threads when it picks the CPU (one thread on 2 cores), and it
    turns mixed precision off there: its bf16 autocast accepts CUDA only.
    """
    threads = config.threads or os.cpu_count() or 1
    # Fires before every epoch, the first included, after the trainer's select_device has run.
    model.add_callback("on_train_epoch_start", lambda trainer: torch.set_num_threads(threads))
    if cpu_precision_used(config) == "bf16":
        model.add_callback("on_train_start", _autocast_on_cpu)
    elif config.cpu_precision == "bf16":
        log.warning("cpu_precision bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX), where torch emulates it "
                    "10-20x slower than f32; training in f32")
    if config.keep_dir is not None:
        keep_dir = config.keep_dir
        model.add_callback("on_model_save", lambda trainer: keep_copies(Path(trainer.save_dir), keep_dir))
    return model


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX. Elsewhere torch emulates bf16: on an AMD EPYC with AVX2 only, a bf16 batch took about
    60 s (while an evaluation shared the cores) against 2.9 s in f32, session 32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def cpu_precision_used(config: TrainingConfig) -> Literal["f32", "bf16"]:
    """The precision CPU training runs in: bf16 only where the config asks for it and the CPU computes it natively."""
    return "bf16" if config.cpu_precision == "bf16" and cpu_has_native_bf16() else "f32"


# Paths inside the run folder, last.pt last: a kept last.pt has its epoch's results.csv beside it.
KEPT = ("results.csv", "weights/best.pt", "weights/last.pt")


def keep_copies(run: Path, keep_dir: Path) -> None:
    """Copy the run's last.pt, best.pt (stripped of optimizer state) and results.csv into keep_dir."""
    keep_dir.mkdir(parents=True, exist_ok=True)
    for inside in KEPT:
        source, target = run / inside, keep_dir / Path(inside).name
        if not source.is_file() or (target.is_file() and target.stat().st_mtime >= source.stat().st_mtime):
            continue  # best.pt is rewritten only in epochs that improve on it
        # Through a temporary name, so that a session ending mid-copy leaves the previous copy whole.
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        if target.name == "best.pt":
            strip_optimizer(partial)  # half the size; only last.pt resumes
        partial.replace(target)


def restore_kept(keep_dir: Path, run: Path) -> None:
    """Put the kept copies back into the run folder that --resume reads."""
    for inside in KEPT:
        if (keep_dir / Path(inside).name).is_file():
            (run / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(keep_dir / Path(inside).name, run / inside)
    log.info("restored %s into %s to resume", keep_dir, run)


def _autocast_on_cpu(trainer: DetectionTrainer) -> None:
    # The trainer wraps each batch in autocast(self.amp, device): on the CPU that is torch's bf16
    # autocast. Its gradient scaler, made while amp was off, stays off, as bf16 needs no scaling.
    if trainer.device.type == "cpu":
        trainer.amp = True


def write_summary(run: Path, config: TrainingConfig, data_summary: dict[str, Any], seconds: float) -> None:
    rows = list(csv.DictReader((run / "results.csv").open())) if (run / "results.csv").is_file() else []
    rows = [{k.strip(): v.strip() for k, v in row.items()} for row in rows]
    summary = {
        "config": json.loads(config.model_dump_json()),
        "cpu_precision_used": cpu_precision_used(config) if config.device == "cpu" else None,
        "data": data_summary,
        "epochs_completed": len(rows),
        "train_seconds_this_invocation": round(seconds),
        "metrics_per_epoch": rows,
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
