"""Speed on this machine: detector per backend next to raw runtime inference (the floor), and
how many cameras the real monitor sustains.

Ratios compare figures measured in the same run: these machines are shared and noisy.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import get_args

import av
import cv2
import numpy as np
import psutil

from detector import Detector, DetectorSettings, SecondLookSettings, exported_model_path, shipped_model_path
from detector.backends import BackendName, Precision, to_tensor
from detector.model import Letterbox


@dataclass(frozen=True)
class LatencyRow:
    backend: str
    model: str  # the file timed
    views: int  # first-pass views per frame: input sizes times 2 with the mirror view
    computes: str  # the arithmetic the backend ran in: OpenVINO's bf16 is f32 on a CPU without native bf16
    pipeline_ms: float  # Detector.detect: letterbox, inference, decode, NMS, fusing the views
    raw_ms: float  # the runtime's own inference calls on the same prepared tensors (one batch per input size)
    ratio: float


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _interleaved_median_ms(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Medians of two functions timed turn about, so a noisy neighbour slows both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, spent in zip((first, second), times, strict=True):
            started = time.perf_counter()
            function()
            spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def _raw_inference(backend: BackendName, path: Path, tensor: np.ndarray, threads: int, precision: Precision) -> Callable[[], object]:
    """Inference straight through each runtime's API, none of our code in between."""
    if backend == "openvino":
        import openvino as ov

        core = ov.Core()
        hint = ov.Type.bf16 if precision == "bf16" else ov.Type.f32
        model = core.read_model(str(next(path.glob("*.xml"))))
        model.reshape({0: ov.PartialShape(list(tensor.shape))})  # static, as fast as OpenVINO runs this input
        compiled = core.compile_model(model, "CPU", {
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": hint})
        request = compiled.create_infer_request()
        return lambda: request.infer({0: tensor})
    if backend == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda: session.run(None, {name: tensor})
    import torch
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(str(path), device=torch.device("cpu"), fuse=True)
    batch = torch.from_numpy(tensor)

    def run() -> object:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return model(batch)

    return run


def _run_all(calls: list[Callable[[], object]]) -> None:
    for call in calls:
        call()


def check_exports(weights: Path) -> None:
    """Fails, naming what to run, unless ``weights`` (a .pt) has its ONNX and OpenVINO exports beside it."""
    missing = [path for path in (exported_model_path(weights, backend) for backend in get_args(BackendName)) if not path.exists()]
    if missing:
        raise FileNotFoundError(f"{weights}: no export at {', '.join(map(str, missing))}; write them with python -m "
                                f"detector.training.export --weights {weights} --name {weights.stem} --out-dir {weights.parent}")


def detector_latency(frame: np.ndarray, views: DetectorSettings, threads: int, repeats: int = 100,
                     weights: Path | None = None) -> list[LatencyRow]:
    """Detector.detect with the first-pass views of ``views`` (input size, extra sizes, mirror, fusion) against
    raw inference of the inputs it builds: per input size, the frame (and its mirror image) as one batch.

    ``weights`` (a .pt with its ONNX and OpenVINO exports beside it, see ``check_exports``) times a candidate
    instead of the shipped model."""
    weights = weights or shipped_model_path("pytorch")
    rows = []
    for backend, precision in (("openvino", "f32"), ("openvino", "bf16"), ("onnx", "f32"), ("pytorch", "f32")):
        path = exported_model_path(weights, backend)  # type: ignore[arg-type]
        settings = views.model_copy(update={"model": path, "backend": backend, "threads": threads,
                                            "openvino_precision": precision,
                                            "second_look": SecondLookSettings(enabled=False)})
        detector = Detector(settings)
        # The floor computes in what the detector computes (f32 where the CPU has no native bf16).
        computes: Precision = "bf16" if detector.backend.precision == "bf16" else "f32"
        batches = []
        for size in dict.fromkeys(size for size, _ in settings.views()):
            letterbox = Letterbox(frame.shape[:2], size, detector.backend.fixed_size, settings.border)
            images = [cv2.flip(frame, 1) if flipped else frame for s, flipped in settings.views() if s == size]
            batches.append(_raw_inference(backend, path, to_tensor(np.stack([letterbox.apply(image) for image in images])),  # type: ignore[arg-type]
                                          threads, computes))
        raw, full = _interleaved_median_ms(partial(_run_all, batches), partial(detector.detect, frame), repeats)
        name = backend if backend != "openvino" else f"openvino-{precision}"
        rows.append(LatencyRow(name, path.name, len(settings.views()), computes,
                               round(full, 2), round(raw, 2), round(full / raw, 3)))
    return rows


def second_look_cost(frame: np.ndarray, settings: DetectorSettings, repeats: int = 20) -> dict[str, float]:
    off = Detector(settings.model_copy(update={"second_look": SecondLookSettings(enabled=False)}))
    on = Detector(settings.model_copy(update={"second_look": SecondLookSettings(enabled=True)}))
    return {"without_ms": round(_median_ms(lambda: off.detect(frame), repeats), 2),
            "with_ms": round(_median_ms(lambda: on.detect(frame), repeats), 2),
            "persons": int((off.detect(frame).class_id == off.person_id).sum())}


def make_camera_clip(source: Path, target: Path, seconds: float = 20.0, size: tuple[int, int] = (1280, 720), fps: int = 25) -> Path:
    """A looping test stream: the source video scaled to ``size`` at ``fps``, H.264 with a keyframe every second."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps, 1), options={"preset": "veryfast", "g": str(fps)})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        frames = list(inp.decode(video=0))
        for index in range(int(seconds * fps)):
            source_frame = frames[min(len(frames) - 1, int(index * len(frames) / (seconds * fps)))]
            frame = source_frame.reformat(width=size[0], height=size[1], format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target


@dataclass(frozen=True)
class ThroughputResult:
    cameras: int
    analysis_threads: int
    inference_threads: int
    seconds: float
    target_fps_per_camera: float
    analyzed_fps_per_camera: float
    analyzed_fps_total: float
    dropped_frames: int
    motion_skipped_frames: int
    frames_read_per_camera_s: float
    cpu_percent_per_camera: float  # of one core
    memory_mb_per_camera: float
    realtime: bool


def monitor_throughput(clip: Path, cameras: int, analysis_fps: float, seconds: float, detector_settings: DetectorSettings,
                       analysis_threads: int | None = None) -> ThroughputResult:
    """The real monitor (readers, analysis threads, SQLite, evidence store) on ``cameras`` looping copies of ``clip``,
    with the detector built as the service builds it."""
    from service.config import AppConfig, CameraConfig
    from service.db.session import Database
    from service.evidence import EvidenceStore
    from service.metrics import Metrics
    from service.monitor import Monitor, service_detector
    from service.monitor import analysis_threads as threads_for

    process = psutil.Process(os.getpid())
    with tempfile.TemporaryDirectory() as folder:
        config = AppConfig(detector=detector_settings, analysis_threads=analysis_threads, cameras=[
            CameraConfig(id=f"cam{i}", source=str(clip), analysis_fps=analysis_fps, realtime=True, loop=True) for i in range(cameras)])
        database = Database(f"sqlite:///{folder}/bench.db")
        store = EvidenceStore(Path(folder) / "evidence")
        metrics = Metrics()
        detector = service_detector(config)
        analysis_threads_used = threads_for(config)
        detector.warmup()
        memory_before = process.memory_info().rss
        monitor = Monitor(config, database, store, detector, metrics)
        monitor.start()
        time.sleep(3.0)  # let every reader connect

        def total(counter: str) -> float:
            return sum(s.value for m in metrics.registry.collect() if m.name == counter for s in m.samples if s.name.endswith("_total"))
        analyzed0 = total("smokewatch_frames_analyzed")
        dropped0, skipped0 = total("smokewatch_frames_dropped"), total("smokewatch_frames_motion_skipped")
        read0 = sum(r.frames_read for r in monitor.readers.values())
        process.cpu_percent(None)
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = process.cpu_percent(None)
        analyzed = total("smokewatch_frames_analyzed") - analyzed0
        dropped = int(total("smokewatch_frames_dropped") - dropped0)
        skipped = int(total("smokewatch_frames_motion_skipped") - skipped0)
        read = sum(r.frames_read for r in monitor.readers.values()) - read0
        memory = process.memory_info().rss - memory_before
        monitor.stop()
        database.dispose()
    per_camera = analyzed / elapsed / cameras
    return ThroughputResult(cameras, analysis_threads_used, detector.settings.threads, round(elapsed, 1),
                            analysis_fps, round(per_camera, 2), round(analyzed / elapsed, 2), dropped,
                            skipped, round(read / elapsed / cameras, 1), round(cpu / cameras, 1),
                            round(memory / 2**20 / cameras, 1), per_camera >= 0.95 * analysis_fps)
