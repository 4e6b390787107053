"""``smokewatch evaluate videos|images|compare`` and ``smokewatch bench``."""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Annotated

import typer

from detector import SHIPPED_IMGSZ, DetectorSettings
from detector.model import Fusion
from service.config import AppConfig, CameraConfig, ConfigError, load_config

evaluate_app = typer.Typer(no_args_is_help=True, help="Accuracy on labeled videos and image sets.")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".ts", ".webm"}

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Cameras file whose detector and camera settings are used.")]
CameraOption = Annotated[str | None, typer.Option(help="Camera in --config whose settings every video uses (default: the first).")]
ModelOption = Annotated[Path | None, typer.Option(help="Model (.pt, .onnx, OpenVINO folder); default: the config's or the shipped one.")]
MirrorOption = Annotated[bool, typer.Option(help="Also run each image mirrored and fuse the views (the detector's "
                                                "mirror setting, on as shipped; --no-mirror runs one view).")]
ExtraSizeOption = Annotated[list[int] | None, typer.Option("--extra-size", help="Also run each image at this input size "
                                                          "and fuse the views (repeatable; the detector's extra_sizes).")]
FusionOption = Annotated[Fusion, typer.Option(help="How several views' boxes are scored: 'max' or 'mean' "
                                                   "(the detector's fusion setting).")]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _settings(config: Path | None, camera: str | None, model: Path | None) -> tuple[AppConfig, CameraConfig | None]:
    try:
        loaded = load_config(config) if config else AppConfig()
    except ConfigError as error:
        raise _fail(str(error)) from None
    if model is not None:
        loaded = loaded.model_copy(update={"detector": loaded.detector.model_copy(update={"model": model, "backend": "auto"})})
    template = None
    if loaded.cameras:
        matches = [c for c in loaded.cameras if camera in (None, c.id)]
        if not matches:
            raise _fail(f"{config}: no camera {camera!r}; cameras are {[c.id for c in loaded.cameras]}")
        template = matches[0]
    return loaded, template


def _video_report(labels_file: Path, videos_dir: Path, config: Path | None, camera: str | None, model: Path | None,
                  sweep: bool, max_false_alarms_per_hour: float, progress: bool) -> tuple[dict, list[str]]:
    from detector import Detector, ModelLoadError
    from evaluation.labels import LabelFileError, load_labels
    from evaluation.metrics import evaluate
    from evaluation.metrics import sweep as run_sweep
    from evaluation.report import build_report
    from evaluation.runner import VIDEO_SCORE_FLOOR, default_grid, person_frame_recall, record_videos, rescorer

    try:
        labels = load_labels(labels_file, videos_dir)
    except LabelFileError as error:
        raise _fail(str(error)) from None
    for problem in labels.errors:
        typer.secho(problem, err=True, fg=typer.colors.YELLOW)
    settings, template = _settings(config, camera, model)
    template = template or CameraConfig(id="video", source="video")
    # Cigarettes are recorded down to the floor whether or not the sweep runs, so that frame-level AP (and the
    # comparison's paired difference) covers the same score range in `videos`, `videos --no-sweep` and `compare`.
    recording = settings.detector.model_copy(
        update={"cigarette_conf": min(settings.detector.cigarette_conf, VIDEO_SCORE_FLOOR)})
    # Scores between the floor and the configured detector threshold must not count at the configured point.
    events = template.events.model_copy(
        update={"min_score": max(template.events.min_score, settings.detector.cigarette_conf)})
    template = template.model_copy(update={"events": events})
    try:
        detector = Detector(recording)
    except (ModelLoadError, ValueError) as error:
        raise _fail(f"cannot load the model: {error}") from None
    videos = [videos_dir / name for name in sorted(labels.videos)]
    recorded = record_videos(videos, template, detector, settings, progress)
    for video in recorded:
        if video.error:
            typer.secho(f"{video.video}: {video.error}; left out", err=True, fg=typer.colors.YELLOW)
    result = evaluate(labels, [video.as_run() for video in recorded], frame_threshold=events.min_score)
    sweep_result = run_sweep(labels, default_grid(), rescorer(recorded, events),
                             max_false_alarms_per_hour=max_false_alarms_per_hour) if sweep else None
    report = build_report(result, sweep=sweep_result, model=detector.version, config={
        "detector": settings.detector.model_dump(mode="json"), "events": events.model_dump(mode="json"),
        "analysis_fps": template.analysis_fps, "recorded_down_to_cigarette_score": recording.cigarette_conf,
        "labels": str(labels_file), "videos": str(videos_dir), "machine": platform.processor() or platform.machine(),
    })
    report["summary"]["person_frame_recall"] = person_frame_recall(recorded, labels)
    return report, labels.errors


@evaluate_app.command("videos")
def evaluate_videos(
    labels: Annotated[Path, typer.Option(help="Labels CSV (see evaluation/LABELS.md), e.g. ../shared/videos/labels.csv.")],
    videos: Annotated[Path, typer.Option(help="Folder holding the labeled videos.")],
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.html.")] = Path("runs/evaluation-report"),
    config: ConfigOption = None,
    camera: CameraOption = None,
    model: ModelOption = None,
    sweep: Annotated[bool, typer.Option(help="Re-score over a grid of thresholds and event timings.")] = True,
    max_false_alarms_per_hour: Annotated[float, typer.Option(help="Budget for the 'best recall' operating point.")] = 1.0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Event precision, recall, false alarms per hour and time to alert on labeled videos."""
    from evaluation.report import collect_thumbnails, write_html, write_json

    report, _ = _video_report(labels, videos, config, camera, model, sweep, max_false_alarms_per_hour, progress)
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "report.json")
    thumbnails, problems = collect_thumbnails(report, videos)
    for problem in problems:
        typer.secho(problem, err=True, fg=typer.colors.YELLOW)
    write_html(report, out / "report.html", thumbnails)
    s = report["summary"]

    def show(value: object) -> str:
        return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    typer.echo(f"videos {s['videos']} (with smoking {s['videos_with_smoking']}), intervals {s['intervals']}, events {s['events']}")
    typer.echo(f"TP {s['tp']}  FP {s['fp']}  FN {s['fn']}  duplicates {s['duplicates']}")
    typer.echo(f"precision {show(s['precision'])}  recall {show(s['recall'])}  F1 {show(s['f1'])}  "
               f"false alarms/hour {show(s['false_alarms_per_hour'])}")
    typer.echo(f"time to alert: median {show(s['time_to_alert_median_s'])} s, p90 {show(s['time_to_alert_p90_s'])} s")
    typer.echo(f"frame-level precision {show(s['frames']['precision'])} recall {show(s['frames']['recall'])}; "
               f"frames in smoking intervals with a person found: {show(s['person_frame_recall'])}")
    if report["sweep"]:
        typer.echo(f"best F1 point: {report['sweep']['best_f1']}")
    typer.echo(f"report: {out / 'report.html'}  json: {out / 'report.json'}")


@evaluate_app.command("images")
def evaluate_images_command(
    data: Annotated[Path, typer.Option(help="YOLO data yaml, e.g. runs/data/heldout-cigarette-wpb75-test.yaml.")],
    model: ModelOption = None,
    imgsz: Annotated[int, typer.Option(help="Input size (default: the shipped model's).")] = SHIPPED_IMGSZ,
    mirror: MirrorOption = DetectorSettings.model_fields["mirror"].default,
    extra_size: ExtraSizeOption = None,
    fusion: FusionOption = "max",
    baseline: Annotated[Path | None, typer.Option(
        help="Also run this model, with the same settings, on the same images, and print --model's AP50 minus its, "
             "per class, with a paired 95 % interval over the images (an interval holding 0 does not tell them "
             "apart).")] = None,
    baseline_one_view: Annotated[bool, typer.Option(
        help="Run --baseline with one view (no mirror, no extra sizes) whatever --mirror and --extra-size give "
             "--model: a several-view candidate against a model as the detector ran it before.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the rows as JSON here.")] = None,
) -> None:
    """AP50, AP50-95, precision and recall per class on an image set, and cigarette box size against the labels.

    Datasets draw cigarette boxes differently (tight, or with a margin); the size comparison shows which one a model
    learned.
    """
    from detector import ModelLoadError
    from evaluation.images import ClassMetrics, as_dicts, evaluate_images, paired_ap50

    try:
        settings = DetectorSettings(model=model, imgsz=imgsz, mirror=mirror, extra_sizes=extra_size or [], fusion=fusion)
        baseline_settings = (settings.one_view() if baseline_one_view else settings).model_copy(update={"model": baseline})
        # the baseline first, so that a wrong path fails before the long run
        against = evaluate_images(baseline_settings, data) if baseline else None
        result = evaluate_images(settings, data)
    except (FileNotFoundError, ValueError, ModelLoadError) as error:
        raise _fail(str(error)) from None
    typer.echo(f"{'class':<10} {'images':>6} {'boxes':>6} {ClassMetrics.HEADER}")
    for row in result.classes:
        typer.echo(f"{row.name:<10} {row.images:>6} {row.instances:>6} {row.figures()}")
    typer.echo(f"cigarette boxes vs labels: {result.box_scale.describe()}")
    differences = {}
    if against is not None:
        for row in result.classes:
            paired = paired_ap50(against.matches[row.name], result.matches[row.name])
            if paired is not None:
                differences[row.name] = paired.as_json()
                typer.echo(f"{row.name} AP50, model - baseline ({paired.b:.3f} - {paired.a:.3f}): {paired.describe()}")
    if json_out:
        json_out.write_text(json.dumps({"model": str(model or "shipped"), "data": str(data), "imgsz": imgsz, "mirror": mirror,
                                        "extra_sizes": settings.extra_sizes, "fusion": fusion,
                                        "classes": as_dicts(result.classes),
                                        "cigarette_box_scale": dataclasses.asdict(result.box_scale),
                                        "baseline": str(baseline) if baseline else None,
                                        "baseline_views": len(baseline_settings.views()) if baseline else None,
                                        "ap50_minus_baseline": differences}, indent=2))


@evaluate_app.command("compare")
def compare(
    labels: Annotated[Path | None, typer.Option(help="Labels CSV (needed unless both sides are saved reports).")] = None,
    videos: Annotated[Path | None, typer.Option(help="Folder holding the labeled videos (as --labels).")] = None,
    model_a: Annotated[Path | None, typer.Option(help="First model (default: shipped).")] = None,
    model_b: Annotated[Path | None, typer.Option(help="Second model (default: shipped).")] = None,
    config_a: Annotated[Path | None, typer.Option(help="First cameras file.")] = None,
    config_b: Annotated[Path | None, typer.Option(help="Second cameras file.")] = None,
    report_a: Annotated[Path | None, typer.Option(help="A saved report.json of `evaluate videos` as the first side, "
                                                       "instead of running a model.")] = None,
    report_b: Annotated[Path | None, typer.Option(help="A saved report.json as the second side.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the comparison.")] = Path("runs/evaluation-compare"),
) -> None:
    """Two models, two configs or two saved reports on the same videos, side by side."""
    from evaluation.report import build_comparison, write_comparison_html, write_json

    def side(name: str, report: Path | None, config: Path | None, model: Path | None) -> tuple[dict, str]:
        if report is not None:
            if config is not None or model is not None:
                raise _fail(f"--report-{name} is a finished run: give it without --model-{name} or --config-{name}")
            return _saved_report(report), str(report)
        if labels is None or videos is None:
            raise _fail(f"side {name.upper()} runs a model: give --labels and --videos, or --report-{name}")
        return _video_report(labels, videos, config, None, model, False, 1.0, True)[0], str(model or config or name.upper())

    first, label_a = side("a", report_a, config_a, model_a)
    second, label_b = side("b", report_b, config_b, model_b)
    out.mkdir(parents=True, exist_ok=True)
    comparison = build_comparison(first, second, label_a, label_b)
    write_json(comparison, out / "comparison.json")
    write_comparison_html(comparison, out / "comparison.html")
    for metric in comparison["metrics"]:
        typer.echo(f"{metric['name']:<32} {metric['a']!s:>10} {metric['b']!s:>10}  {metric['change'] or ''}")
    for note in comparison["notes"]:
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
    if comparison["frame_ap_difference"]:
        typer.echo(f"frame AP, B - A, clips resampled: {comparison['frame_ap_difference']['text']}")
    typer.echo(f"comparison: {out / 'comparison.html'}")


def _saved_report(path: Path) -> dict:
    from evaluation.report import SCHEMA

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _fail(f"{path}: cannot read the report ({error.strerror or error})") from None
    except json.JSONDecodeError as error:
        raise _fail(f"{path}: not JSON ({error.msg} at line {error.lineno}); give the report.json that "
                    f"`smokewatch evaluate videos` writes") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise _fail(f"{path}: not an evaluation report (schema {found!r}, expected {SCHEMA!r}); give the report.json "
                    f"that `smokewatch evaluate videos` writes")
    return report


def _accuracy_table(data: list[Path], settings: DetectorSettings, weights: Path) -> list[dict[str, object]]:
    """AP per held-out set through the detector on PyTorch (f32) and on OpenVINO at the settings' precision,
    so the fast backend's accuracy is checked against the original weights (a .pt with its exports beside it)."""
    from detector import exported_model_path
    from evaluation.images import ClassMetrics, as_dicts, evaluate_images

    rows: list[dict[str, object]] = []
    typer.echo(f"{'set':<28} {'backend':<10} {'class':<10} {ClassMetrics.HEADER}")
    for yaml_path in data:
        name = yaml_path.stem.removeprefix("heldout-")
        for backend in ("pytorch", "openvino"):
            model = exported_model_path(weights, backend)
            result = evaluate_images(settings.model_copy(update={"backend": backend, "model": model}), yaml_path)
            for row, figures in zip(result.classes, as_dicts(result.classes), strict=True):
                rows.append({"set": name, "backend": backend, **figures})
                typer.echo(f"{name:<28} {backend:<10} {row.name:<10} {row.figures()}")
            rows.append({"set": name, "backend": backend, "name": "cigarette",
                         "box_scale": dataclasses.asdict(result.box_scale)})
            typer.echo(f"{name:<28} {backend:<10} {'cigarette':<10} boxes vs labels: {result.box_scale.describe()}")
    return rows


def bench(
    video: Annotated[Path | None, typer.Option(help="Footage for the benchmark (default: a clip from ../shared/videos).")] = None,
    cameras: Annotated[int, typer.Option(help="Simulated cameras for the throughput test.")] = 8,
    analysis_fps: Annotated[float, typer.Option(help="Analysis rate per camera.")] = 5.0,
    seconds: Annotated[float, typer.Option(help="Length of the throughput test (long: single runs on a small shared CPU vary).")] = 60.0,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Cameras file whose detector settings (views, "
                                                "border, thresholds) the shipped model runs with.")] = None,
    imgsz: Annotated[int | None, typer.Option(help="Detector input size (default: the config's, or the shipped "
                                                   "model's).")] = None,
    model: Annotated[Path | None, typer.Option(help="A candidate's .pt with its ONNX and OpenVINO exports beside it (as "
                                                    "python -m detector.training.export writes them) instead of the "
                                                    "shipped model.")] = None,
    threads: Annotated[int, typer.Option(help="Inference threads (latency and AP; the throughput test shares the cores "
                                               "out among analysis threads as the service does).")] = 2,
    analysis_threads: Annotated[list[int] | None, typer.Option(
        help="Analysis threads of the throughput test; repeat to compare (default: the service's choice).")] = None,
    data: Annotated[list[Path] | None, typer.Option(help="Held-out YOLO data yamls to report AP on (repeatable).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON here.")] = None,
) -> None:
    """Detector ms per backend vs raw runtime inference, AP on held-out sets, second-look cost, cameras sustained."""
    import tempfile

    import av

    from detector import exported_model_path, shipped_model_path
    from evaluation.bench import check_exports, detector_latency, make_camera_clip, monitor_throughput, second_look_cost

    if model is not None:
        try:
            check_exports(model)
        except FileNotFoundError as error:
            raise _fail(f"--model {error}") from None
    footage = video or Path(__file__).resolve().parents[2] / "shared" / "videos" / "neg08_corridor_surv-corridorB_8clips.mp4"
    if not footage.is_file():
        raise _fail(f"video not found: {footage}; pass --video")
    with av.open(str(footage)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    weights = model or shipped_model_path("pytorch")
    configured = _settings(config, None, None)[0].detector if config else DetectorSettings()
    # the model on the fastest backend with the configured settings; the monitor below shares the cores out as the
    # service does
    as_service = configured.model_copy(update={"model": exported_model_path(weights, "openvino"), "backend": "openvino",
                                               "imgsz": imgsz or configured.imgsz})
    settings = as_service.model_copy(update={"threads": threads})
    figures: dict[str, object] = {"video": str(footage), "model": str(model or "shipped"), "imgsz": settings.imgsz,
                                  "views": settings.views(), "fusion": settings.fusion, "threads": threads}
    typer.echo(f"{model or 'the shipped model'} on one {frame.shape[1]}x{frame.shape[0]} frame, imgsz {settings.imgsz}, views "
               f"{settings.views()}, {threads} threads (median ms)")
    # one view, and the configured views (or, if that is one view, the mirror view), each against raw inference
    # of the inputs it builds
    several = settings if len(settings.views()) > 1 else settings.model_copy(update={"mirror": True})
    latency = (detector_latency(frame, settings.one_view(), threads, weights=weights)
               + detector_latency(frame, several, threads, weights=weights))
    typer.echo(f"{'backend':<15} {'views':>5} {'computes':>8} {'detect':>8} {'raw':>8} {'ratio':>6}")
    for row in latency:
        typer.echo(f"{row.backend:<15} {row.views:>5} {row.computes:>8} {row.pipeline_ms:>8.2f} {row.raw_ms:>8.2f} "
                   f"{row.ratio:>6.3f}")
    figures["latency"] = [dataclasses.asdict(row) for row in latency]
    if data:
        figures["accuracy"] = _accuracy_table(data, settings, weights)
    look = second_look_cost(frame, settings)
    typer.echo(f"second look on {look['persons']} person(s): {look['without_ms']} ms -> {look['with_ms']} ms")
    figures["second_look"] = look
    if cameras > 0:
        views = len(settings.views())  # as the monitor below runs the detector
        raw_fps = 1000 / min(row.raw_ms for row in latency if row.views == views)
        runs = []
        with tempfile.TemporaryDirectory() as folder:
            clip = make_camera_clip(footage, Path(folder) / "camera.mp4")
            choices: list[int | None] = list(analysis_threads) if analysis_threads else [None]
            for workers in choices:
                result = monitor_throughput(clip, cameras, analysis_fps, seconds, as_service, workers)
                typer.echo(f"{cameras} cameras of 1280x720 25 fps at {analysis_fps} fps each for {result.seconds} s, "
                           f"{result.analysis_threads} analysis thread(s) x {result.inference_threads} inference thread(s):")
                typer.echo(f"  analyzed {result.analyzed_fps_per_camera} fps per camera ({result.analyzed_fps_total} total), "
                           f"dropped {result.dropped_frames}, motion-skipped {result.motion_skipped_frames}, "
                           f"decoded {result.frames_read_per_camera_s} fps per camera")
                typer.echo(f"  CPU {result.cpu_percent_per_camera}% of a core and {result.memory_mb_per_camera} MB per camera; "
                           f"real time: {'yes' if result.realtime else 'NO'}")
                typer.echo(f"  raw detector throughput {raw_fps:.1f} fps; analyzed/raw = {result.analyzed_fps_total / raw_fps:.2f}")
                runs.append(dataclasses.asdict(result) | {"raw_detector_fps": round(raw_fps, 1)})
        figures["throughput"] = runs
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2))
