"""The evaluation report: a JSON document with stable keys, and one self-contained HTML page drawn from it.

JSON keys (schema ``smokewatch.evaluation/1``; times in seconds, rates in [0, 1], null where a value is undefined):

- ``schema``: ``"smokewatch.evaluation/1"``.
- ``model``: free text naming the model and weights evaluated.
- ``config``: the caller's settings (detector, event logic, videos folder ...), copied as given.
- ``summary``: ``videos``, ``videos_with_smoking``, ``videos_left_out``, ``intervals``, ``events``, ``tp``, ``fp``, ``fn``,
  ``duplicates``, ``ignored``, ``duration_s``, ``negative_s``, ``precision``, ``recall``, ``f1``, ``false_alarms_per_hour``,
  ``time_to_alert_median_s``, ``time_to_alert_p90_s``, ``tolerance_s``, and ``frames``: ``threshold``, ``frames``,
  ``excluded``, ``tp``, ``fp``, ``fn``, ``tn``, ``precision``, ``recall``, ``average_precision``, ``pr_curve``
  (list of ``{threshold, precision, recall}``).
- ``videos``: one object per labeled video, by name: ``video``, ``evaluated``, ``error``, ``duration_s``, ``smoking_s``,
  ``negative_s``, ``intervals``, ``events``, ``tp``, ``fp``, ``fn``, ``duplicates``, ``ignored``, ``time_to_alert_s`` (list),
  ``labels`` (list of ``{person, start_s, end_s, visibility, kind, notes, line}``), ``predictions`` (list of
  ``{track_id, start_s, confirmed_s, end_s, score, outcome, interval}`` with ``outcome`` one of ``tp``, ``duplicate``,
  ``ignored``, ``false_alarm`` and ``interval`` the matched or overlapped ``{person, start_s, end_s, kind}`` or null),
  ``misses`` (list of ``{person, start_s, end_s, visibility, notes}``) and ``frame_scores`` (list of ``[t_s, score]``).
- ``sweep``: null, or ``max_false_alarms_per_hour``, ``rows`` (list of ``{index, params, <summary counts and rates>}``),
  ``best_f1`` and ``best_recall_within_false_alarms`` (a row or null) and ``pr_curve`` (list of ``[recall, precision]``).
- ``errors``: label-file and run problems, one message each.

A comparison (``build_comparison``) has ``schema`` ``"smokewatch.evaluation-comparison/1"``, ``a`` and ``b``
(``{label, model}``), ``metrics`` (list of ``{name, a, b, delta, higher_is, change}`` with ``change`` one of ``better``,
``worse``, ``same`` or null), ``videos`` (list of ``{video, a, b}`` with per-video counts or null) and ``notes``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluation.labels import LabeledInterval
from evaluation.metrics import (
    EvaluationResult,
    EventMetrics,
    SweepResult,
    SweepRow,
    VideoResult,
    paired_frame_ap,
    scored_frames,
)

SCHEMA = "smokewatch.evaluation/1"
COMPARISON_SCHEMA = "smokewatch.evaluation-comparison/1"
THUMBNAIL_MAX_WIDTH = 320

Report = dict[str, Any]
ThumbnailKey = tuple[str, float]

_OUTCOME_COLOURS = {"tp": "#1565c0", "duplicate": "#ef6c00", "ignored": "#9e9e9e", "false_alarm": "#c62828"}
_OUTCOME_NAMES = {"tp": "detected (TP)", "duplicate": "duplicate", "ignored": "in ignore span", "false_alarm": "false alarm"}


def _number(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: mappings and sequences recursively, paths and other objects as text, non-finite floats as null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _metrics_dict(metrics: EventMetrics) -> dict[str, Any]:
    return {k: (_number(v) if isinstance(v, float) else v) for k, v in asdict(metrics).items()}


def _label_dict(interval: LabeledInterval) -> dict[str, Any]:
    return {"person": interval.person, "start_s": _number(interval.start_s, 3), "end_s": _number(interval.end_s, 3),
            "visibility": interval.visibility, "kind": interval.kind, "notes": interval.notes, "line": interval.line}


def _video_dict(v: VideoResult) -> dict[str, Any]:
    predictions = []
    if v.match is not None:
        for outcome in v.match.outcomes:
            e, span = outcome.event, outcome.interval
            predictions.append({
                "track_id": e.track_id, "start_s": _number(e.start_s, 3), "confirmed_s": _number(e.confirmed_s, 3),
                "end_s": _number(e.end_s, 3), "score": _number(e.score, 4), "outcome": outcome.outcome,
                "interval": None if span is None else
                {"person": span.person, "start_s": _number(span.start_s, 3), "end_s": _number(span.end_s, 3), "kind": span.kind},
            })
    misses = v.match.misses if v.match else []
    return {
        "video": v.video,
        "evaluated": v.evaluated,
        "error": v.error,
        "duration_s": _number(v.duration_s, 3),
        "smoking_s": _number(v.smoking_s, 3),
        "negative_s": _number(v.negative_s, 3),
        "intervals": len(v.smoking_intervals),
        "events": len(predictions),
        "tp": len(v.match.matches) if v.match else 0,
        "fp": len(v.match.false_alarms) if v.match else 0,
        "fn": len(misses),
        "duplicates": len(v.match.duplicates) if v.match else 0,
        "ignored": len(v.match.ignored) if v.match else 0,
        "time_to_alert_s": [_number(t, 3) for t in v.time_to_alert_s],
        "labels": [_label_dict(i) for i in v.labels],
        "predictions": predictions,
        "misses": [{"person": i.person, "start_s": _number(i.start_s, 3), "end_s": _number(i.end_s, 3),
                    "visibility": i.visibility, "notes": i.notes} for i in misses],
        "frame_scores": [[_number(f.t_s, 3), _number(f.score, 4)] for f in sorted(v.frames, key=lambda f: f.t_s)] if v.match else [],
    }


def _sweep_row_dict(row: SweepRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"index": row.index, "params": _jsonable(row.params), **_metrics_dict(row.metrics)}


def _sweep_dict(sweep: SweepResult) -> dict[str, Any]:
    return {
        "max_false_alarms_per_hour": _number(sweep.max_false_alarms_per_hour),
        "rows": [_sweep_row_dict(r) for r in sweep.rows],
        "best_f1": _sweep_row_dict(sweep.best_f1),
        "best_recall_within_false_alarms": _sweep_row_dict(sweep.best_recall_within_false_alarms),
        "pr_curve": [[_number(r), _number(p)] for r, p in sweep.pr_curve],
    }


def build_report(
    result: EvaluationResult,
    *,
    sweep: SweepResult | None = None,
    config: Mapping[str, Any] | None = None,
    model: str = "",
) -> Report:
    """The report as plain JSON-ready data with the keys listed in the module docstring."""
    frames = result.frames
    summary: dict[str, Any] = {
        **_metrics_dict(result.summary),
        "videos_with_smoking": sum(1 for v in result.videos if v.evaluated and v.smoking_intervals),
        "videos_left_out": sum(1 for v in result.videos if not v.evaluated),
        "tolerance_s": _number(result.tolerance_s),
        "frames": {
            "threshold": _number(frames.threshold), "frames": frames.frames, "excluded": frames.excluded,
            "tp": frames.tp, "fp": frames.fp, "fn": frames.fn, "tn": frames.tn,
            "precision": _number(frames.precision), "recall": _number(frames.recall),
            "average_precision": _number(result.frame_average_precision),
            "pr_curve": [{"threshold": _number(p.threshold, 4), "precision": _number(p.precision), "recall": _number(p.recall)}
                         for p in result.frame_pr_curve],
        },
    }
    return {
        "schema": SCHEMA,
        "model": model,
        "config": _jsonable(dict(config or {})),
        "summary": summary,
        "videos": [_video_dict(v) for v in result.videos],
        "sweep": _sweep_dict(sweep) if sweep is not None else None,
        "errors": list(result.errors),
    }


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    """Write the report as indented UTF-8 JSON (no NaN) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


# --- thumbnails ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryItem:
    """A moment the report wants a picture of: a false alarm at its confirmation, or a miss at the middle of its interval."""

    video: str
    t_s: float
    kind: str  # "false_alarm" or "miss"
    caption: str


def thumbnail_key(video: str, t_s: float) -> ThumbnailKey:
    """The key under which ``write_html`` looks up the picture for (video, time): times rounded to milliseconds."""
    return (video, round(float(t_s), 3))


def gallery_items(report: Mapping[str, Any]) -> list[GalleryItem]:
    """Every false alarm and every miss of the report, in video order then time."""
    items: list[GalleryItem] = []
    for v in report["videos"]:
        for p in v["predictions"]:
            if p["outcome"] == "false_alarm":
                t = min(max(p["confirmed_s"], p["start_s"]), p["end_s"]) if p["end_s"] >= p["start_s"] else p["confirmed_s"]
                caption = (f"False alarm: {v['video']} at {t:.2f} s (event {p['start_s']:.2f}-{p['end_s']:.2f} s, "
                           f"track {p['track_id']}, score {p['score']:.2f})")
                items.append(GalleryItem(v["video"], round(t, 3), "false_alarm", caption))
        for m in v["misses"]:
            t = (m["start_s"] + m["end_s"]) / 2
            visibility = f", {m['visibility']}" if m["visibility"] else ""
            caption = f"Miss: {v['video']} person {m['person']}, {m['start_s']:.2f}-{m['end_s']:.2f} s{visibility}"
            items.append(GalleryItem(v["video"], round(t, 3), "miss", caption))
    return sorted(items, key=lambda i: (i.video, i.t_s, i.kind))


def extract_thumbnail(video_path: Path, t_s: float, box: Sequence[float] | None = None) -> bytes:
    """JPEG bytes of the frame at ``t_s`` (the last frame if the clip is shorter), at most 320 px wide.

    ``box`` is an optional (x1, y1, x2, y2) rectangle in the frame's pixels, drawn in red. Raises ValueError when the clip
    cannot be opened or has no frame.
    """
    import cv2  # only needed here; keeps the rest of evaluation importable without OpenCV

    capture = cv2.VideoCapture(str(video_path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{video_path}: cannot open video")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index = max(int(round(t_s * fps)), 0) if fps > 0 else 0
        if count > 0:
            index = min(index, count - 1)
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if not ok:
            # Frame counts in headers can be wrong: read from the start and keep the last frame not after t_s.
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            last: Any = None
            position = 0
            while True:
                ok, candidate = capture.read()
                if not ok or (fps > 0 and position > index):
                    break
                last, position = candidate, position + 1
            if last is None:
                raise ValueError(f"{video_path}: no frame could be read near {t_s:.2f} s")
            frame = last
    finally:
        capture.release()
    if box is not None:
        x1, y1, x2, y2 = (int(round(c)) for c in box)
        thickness = max(2, frame.shape[1] // 200)
        cv2.rectangle(frame, (x1, y1), (x2, y2), (40, 40, 230), thickness)
    height, width = frame.shape[:2]
    if width > THUMBNAIL_MAX_WIDTH:
        frame = cv2.resize(frame, (THUMBNAIL_MAX_WIDTH, max(1, round(height * THUMBNAIL_MAX_WIDTH / width))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError(f"{video_path}: JPEG encoding failed")
    return encoded.tobytes()


def collect_thumbnails(report: Mapping[str, Any], videos_dir: Path) -> tuple[dict[ThumbnailKey, bytes], list[str]]:
    """Thumbnails for every gallery item, read from ``videos_dir``, and a message for each one that could not be made."""
    thumbnails: dict[ThumbnailKey, bytes] = {}
    problems: list[str] = []
    for item in gallery_items(report):
        key = thumbnail_key(item.video, item.t_s)
        if key in thumbnails:
            continue
        try:
            thumbnails[key] = extract_thumbnail(Path(videos_dir) / item.video, item.t_s)
        except ValueError as exc:
            problems.append(str(exc))
    return thumbnails, problems


# --- HTML ---------------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212121;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-size:.9em;white-space:nowrap}
th{background:#f5f5f5}td.name,th.name{text-align:left}td.text,th.text{text-align:left;white-space:normal}tr.chosen td{background:#fff8e1}
.better{background:#c8e6c9}.worse{background:#ffcdd2}.error{color:#b71c1c}.muted{color:#757575}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.gallery figure{margin:0;width:320px}
.gallery img{max-width:320px;display:block;border:3px solid #ccc}.gallery figure.false_alarm img{border-color:#c62828}
.gallery figure.miss img{border-color:#2e7d32}.gallery figcaption{font-size:.8em}
.missing{width:316px;height:120px;border:2px dashed #bbb;display:flex;align-items:center;justify-content:center;color:#757575}
svg{display:block;margin:.3em 0}svg text{font-family:inherit;font-size:11px}
.legend span{display:inline-block;margin-right:14px;font-size:.85em}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, style: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if style == "pct":
        return f"{100 * value:.1f} %"
    if style == "s":
        return f"{value:.2f} s"
    if style == "rate":
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _nice_step(span: float, max_ticks: int = 10) -> float:
    for step in (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= max_ticks:
            return float(step)
    return float(math.ceil(span / max_ticks / 3600) * 3600)


def _pr_svg(report: Mapping[str, Any]) -> str:
    """Precision (y) against recall (x): sweep grid points, their frontier, the chosen operating points, and the frame curve."""
    size, left, top = 360, 46, 12
    plot = size - left - 14

    def xy(recall: float, precision: float) -> tuple[float, float]:
        return left + recall * plot, top + (1 - precision) * plot

    parts = [f'<svg width="{size + 190}" height="{size + 30}" viewBox="0 0 {size + 190} {size + 30}" role="img">',
             '<title>Precision-recall</title>']
    for k in range(6):
        value = k / 5
        x, _ = xy(value, 0)
        _, y = xy(0, value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.1f}</text>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot + 14}" text-anchor="middle">{value:.1f}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="none" stroke="#888"/>')
    parts.append(f'<text x="{left + plot / 2}" y="{top + plot + 28}" text-anchor="middle">recall</text>')
    parts.append(f'<text x="12" y="{top + plot / 2}" text-anchor="middle" transform="rotate(-90 12 {top + plot / 2})">precision</text>')

    legend: list[tuple[str, str]] = []
    frame_curve = [p for p in report["summary"]["frames"]["pr_curve"] if p["recall"] is not None]
    if frame_curve:
        points = " ".join("{:.1f},{:.1f}".format(*xy(p["recall"], p["precision"])) for p in frame_curve)
        parts.append(f'<polyline points="{points}" fill="none" stroke="#90caf9" stroke-width="1.5" stroke-dasharray="4 3"/>')
        legend.append(('<line x1="0" y1="6" x2="16" y2="6" stroke="#90caf9" stroke-width="2" stroke-dasharray="4 3"/>', "frames"))
    sweep = report.get("sweep")
    if sweep:
        for row in sweep["rows"]:
            if row["recall"] is None or row["precision"] is None:
                continue
            x, y = xy(row["recall"], row["precision"])
            params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#bdbdbd"><title>#{row["index"]} {_esc(params)}: '
                         f'recall {_fmt(row["recall"], "pct")}, precision {_fmt(row["precision"], "pct")}, '
                         f'{_fmt(row["false_alarms_per_hour"], "rate")} false alarms/h</title></circle>')
        legend.append(('<circle cx="8" cy="6" r="3" fill="#bdbdbd"/>', "grid points"))
        if sweep["pr_curve"]:
            points = " ".join("{:.1f},{:.1f}".format(*xy(r, p)) for r, p in sweep["pr_curve"])
            parts.append(f'<polyline points="{points}" fill="none" stroke="#424242" stroke-width="1.5"/>')
            legend.append(('<line x1="0" y1="6" x2="16" y2="6" stroke="#424242" stroke-width="2"/>', "events (frontier)"))
        for key, colour, name in (("best_f1", "#ef6c00", "best F1"),
                                  ("best_recall_within_false_alarms", "#2e7d32",
                                   f"best recall at ≤ {_fmt(sweep['max_false_alarms_per_hour'], 'rate')} FA/h")):
            row = sweep.get(key)
            if row and row["recall"] is not None and row["precision"] is not None:
                x, y = xy(row["recall"], row["precision"])
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="{colour}" stroke-width="2.5">'
                             f'<title>{_esc(name)}: #{row["index"]}</title></circle>')
                legend.append((f'<circle cx="8" cy="6" r="5" fill="none" stroke="{colour}" stroke-width="2"/>', name))
    summary = report["summary"]
    if summary["recall"] is not None and summary["precision"] is not None:
        x, y = xy(summary["recall"], summary["precision"])
        parts.append(f'<path d="M{x - 5:.1f},{y - 5:.1f}L{x + 5:.1f},{y + 5:.1f}M{x - 5:.1f},{y + 5:.1f}L{x + 5:.1f},{y - 5:.1f}" '
                     f'stroke="#000" stroke-width="2"><title>this run</title></path>')
        legend.append(('<path d="M3,1L13,11M3,11L13,1" stroke="#000" stroke-width="2"/>', "this run (events)"))
    for k, (symbol, name) in enumerate(legend):
        parts.append(f'<g transform="translate({size + 4},{top + 4 + 18 * k})">{symbol}'
                     f'<text x="22" y="10">{_esc(name)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _stack(predictions: Sequence[Mapping[str, Any]]) -> list[int]:
    """Row per prediction so that overlapping events are drawn one above the other."""
    row_ends: list[float] = []
    rows = []
    for p in predictions:
        start, end = min(p["start_s"], p["end_s"]), max(p["start_s"], p["end_s"])
        row = next((k for k, last in enumerate(row_ends) if last < start), len(row_ends))
        if row == len(row_ends):
            row_ends.append(end)
        else:
            row_ends[row] = end
        rows.append(row)
    return rows


def _downsample_peaks(points: Sequence[Sequence[float]], max_points: int = 1500) -> list[Sequence[float]]:
    if len(points) <= max_points:
        return list(points)
    size = math.ceil(len(points) / max_points)
    return [max(points[k:k + size], key=lambda p: p[1]) for k in range(0, len(points), size)]


def _timeline_svg(video: Mapping[str, Any], tolerance_s: float, frame_threshold: float | None) -> str:
    """Labels, predicted events and the per-frame score of one video against time."""
    labels, predictions, frames = video["labels"], video["predictions"], video["frame_scores"]
    ends = [video["duration_s"] or 0.0] + [lab["end_s"] for lab in labels if lab["end_s"] is not None]
    ends += [p["end_s"] for p in predictions] + [f[0] for f in frames]
    span = max(max(ends), 1e-6)
    width, left, right = 960, 96, 12
    plot = width - left - right
    stack = _stack(predictions)
    event_rows = max(stack, default=0) + 1
    label_y, event_y = 8, 36
    score_y = event_y + 14 * event_rows + 10
    score_h = 56
    axis_y = score_y + score_h + 4
    height = axis_y + 20

    def x(t: float) -> float:
        return left + max(min(t, span), 0.0) / span * plot

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
             f'<title>Timeline of {_esc(video["video"])}</title>',
             f'<text x="4" y="{label_y + 12}">labels</text><text x="4" y="{event_y + 10}">events</text>',
             f'<text x="4" y="{score_y + 12}">frame score</text>']
    if video["duration_s"]:
        clip_w = x(video["duration_s"]) - left
        parts.append(f'<rect x="{left}" y="{label_y}" width="{clip_w:.1f}" height="18" fill="#fafafa" stroke="#e0e0e0"/>')
    for lab in labels:
        if lab["start_s"] is None:
            continue
        x1, x2 = x(lab["start_s"]), x(lab["end_s"])
        tip = f'{lab["kind"]} {lab["start_s"]:.2f}-{lab["end_s"]:.2f} s, person {lab["person"]}'
        tip += f', {lab["visibility"]}' if lab["visibility"] else ""
        tip += f': {lab["notes"]}' if lab["notes"] else ""
        if lab["kind"] == "ignore":
            parts.append(f'<rect x="{x1:.1f}" y="{label_y}" width="{max(x2 - x1, 1):.1f}" height="18" fill="#e0e0e0" '
                         f'stroke="#757575" stroke-dasharray="3 2"><title>{_esc(tip)}</title></rect>')
            continue
        t1, t2 = x(lab["start_s"] - tolerance_s), x(lab["end_s"] + tolerance_s)
        parts.append(f'<rect x="{t1:.1f}" y="{label_y + 3}" width="{max(t2 - t1, 1):.1f}" height="12" fill="#c8e6c9"/>')
        parts.append(f'<rect x="{x1:.1f}" y="{label_y}" width="{max(x2 - x1, 2):.1f}" height="18" fill="#2e7d32" fill-opacity="0.85">'
                     f'<title>{_esc(tip)}</title></rect>')
        parts.append(f'<text x="{x1 + 3:.1f}" y="{label_y + 13}" fill="#fff">{lab["person"]}</text>')
    for p, row in zip(predictions, stack, strict=True):
        y = event_y + 14 * row
        x1, x2 = x(min(p["start_s"], p["end_s"])), x(max(p["start_s"], p["end_s"]))
        colour = _OUTCOME_COLOURS.get(p["outcome"], "#000")
        tip = (f'{_OUTCOME_NAMES.get(p["outcome"], p["outcome"])}: track {p["track_id"]}, {p["start_s"]:.2f}-{p["end_s"]:.2f} s, '
               f'confirmed {p["confirmed_s"]:.2f} s, score {p["score"]:.2f}')
        parts.append(f'<rect x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 2):.1f}" height="11" fill="{colour}" fill-opacity="0.8">'
                     f'<title>{_esc(tip)}</title></rect>')
        xc = x(p["confirmed_s"])
        parts.append(f'<line x1="{xc:.1f}" y1="{y - 2}" x2="{xc:.1f}" y2="{y + 13}" stroke="#000" stroke-width="1.5"/>')
    parts.append(f'<rect x="{left}" y="{score_y}" width="{plot}" height="{score_h}" fill="none" stroke="#e0e0e0"/>')
    parts.append(f'<text x="{left - 4}" y="{score_y + 8}" text-anchor="end">1</text>'
                 f'<text x="{left - 4}" y="{score_y + score_h}" text-anchor="end">0</text>')
    if frame_threshold is not None:
        yt = score_y + (1 - min(max(frame_threshold, 0), 1)) * score_h
        parts.append(f'<line x1="{left}" y1="{yt:.1f}" x2="{left + plot}" y2="{yt:.1f}" stroke="#c62828" stroke-dasharray="4 3">'
                     f'<title>frame threshold {frame_threshold:.2f}</title></line>')
    if frames:
        points = " ".join(f"{x(t):.1f},{score_y + (1 - min(max(s, 0), 1)) * score_h:.1f}" for t, s in _downsample_peaks(frames))
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1565c0" stroke-width="1.2"/>')
    step = _nice_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        xt = x(tick)
        parts.append(f'<line x1="{xt:.1f}" y1="{axis_y - 4}" x2="{xt:.1f}" y2="{axis_y}" stroke="#888"/>')
        parts.append(f'<text x="{xt:.1f}" y="{axis_y + 13}" text-anchor="middle">{tick:g} s</text>')
        tick += step
    parts.append("</svg>")
    return "".join(parts)


def _summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    s, f = report["summary"], report["summary"]["frames"]
    return [
        ("videos evaluated (with smoking)", f'{s["videos"]} ({s["videos_with_smoking"]})'),
        ("videos left out (errors)", _fmt(s["videos_left_out"])),
        ("video time / time without smoking", f'{_fmt(s["duration_s"], "s")} / {_fmt(s["negative_s"], "s")}'),
        ("labeled smoking intervals", _fmt(s["intervals"])),
        ("predicted events", _fmt(s["events"])),
        ("detected (TP) / missed (FN)", f'{s["tp"]} / {s["fn"]}'),
        ("false alarms (FP)", _fmt(s["fp"])),
        ("duplicates / in ignore spans", f'{s["duplicates"]} / {s["ignored"]}'),
        ("event precision", _fmt(s["precision"], "pct")),
        ("event recall", _fmt(s["recall"], "pct")),
        ("event F1", _fmt(s["f1"], "pct")),
        ("false alarms per hour without smoking", _fmt(s["false_alarms_per_hour"], "rate")),
        ("time to alert, median / 90th percentile", f'{_fmt(s["time_to_alert_median_s"], "s")} / {_fmt(s["time_to_alert_p90_s"], "s")}'),
        ("matching tolerance", _fmt(s["tolerance_s"], "s")),
        (f'frame precision / recall at score ≥ {_fmt(f["threshold"], "rate")}',
         f'{_fmt(f["precision"], "pct")} / {_fmt(f["recall"], "pct")}'),
        ("frame average precision", _fmt(f["average_precision"], "pct")),
        ("frames counted / in ignore spans", f'{f["frames"]} / {f["excluded"]}'),
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] | None = None,
           text_columns: Sequence[int] = ()) -> str:
    """A table; cells are HTML already. The first column is left-aligned, ``text_columns`` are left-aligned and wrap."""

    def cell_class(k: int) -> str:
        return " class=name" if k == 0 else (" class=text" if k in text_columns else "")

    head = "".join(f"<th{cell_class(k)}>{h}</th>" for k, h in enumerate(header))
    body = []
    for n, row in enumerate(rows):
        css = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        body.append(f"<tr{css}>" + "".join(f"<td{cell_class(k)}>{c}</td>" for k, c in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _sweep_section(sweep: Mapping[str, Any]) -> str:
    chosen = {(sweep.get("best_f1") or {}).get("index"): "best F1",
              (sweep.get("best_recall_within_false_alarms") or {}).get("index"): "best recall within FA budget"}
    if (sweep.get("best_f1") or {}).get("index") == (sweep.get("best_recall_within_false_alarms") or {}).get("index"):
        chosen = {(sweep.get("best_f1") or {}).get("index"): "best F1 and best recall within FA budget"}
    rows, classes = [], []
    for r in sweep["rows"]:
        params = ", ".join(f"{_esc(k)}={_esc(v)}" for k, v in r["params"].items())
        rows.append([str(r["index"]), params, _fmt(r["tp"]), _fmt(r["fp"]), _fmt(r["fn"]), _fmt(r["duplicates"]),
                     _fmt(r["precision"], "pct"), _fmt(r["recall"], "pct"), _fmt(r["f1"], "pct"),
                     _fmt(r["false_alarms_per_hour"], "rate"), _fmt(r["time_to_alert_median_s"], "s"), _esc(chosen.get(r["index"], ""))])
        classes.append("chosen" if r["index"] in chosen else "")
    header = ["#", "parameters", "TP", "FP", "FN", "dup.", "precision", "recall", "F1", "FA/h", "alert median", "chosen"]
    limit = _fmt(sweep["max_false_alarms_per_hour"], "rate")
    return (f"<h2>Threshold sweep</h2><p>{len(sweep['rows'])} grid points; false-alarm budget {limit} per hour.</p>"
            + _table(header, rows, classes, text_columns=(1,)))


def _gallery_section(report: Mapping[str, Any], thumbnails: Mapping[ThumbnailKey, bytes]) -> str:
    items = gallery_items(report)
    if not items:
        return "<h2>False alarms and misses</h2><p>None.</p>"
    normalized = {thumbnail_key(v, t): data for (v, t), data in thumbnails.items()}
    figures = []
    for item in items:
        data = normalized.get(thumbnail_key(item.video, item.t_s))
        if data:
            image = f'<img alt="{_esc(item.caption)}" src="data:image/jpeg;base64,{base64.b64encode(data).decode("ascii")}">'
        else:
            image = '<div class="missing">no thumbnail</div>'
        figures.append(f'<figure class="{item.kind}">{image}<figcaption>{_esc(item.caption)}</figcaption></figure>')
    counts = f"{sum(i.kind == 'false_alarm' for i in items)} false alarms (red), {sum(i.kind == 'miss' for i in items)} misses (green)"
    return f'<h2>False alarms and misses</h2><p>{counts}.</p><div class="gallery">{"".join(figures)}</div>'


def _legend() -> str:
    spans = ['<span><i class="swatch" style="background:#2e7d32"></i>labeled smoking</span>',
             '<span><i class="swatch" style="background:#c8e6c9"></i>± tolerance</span>',
             '<span><i class="swatch" style="background:#e0e0e0;border:1px dashed #757575"></i>ignore span</span>']
    spans += [f'<span><i class="swatch" style="background:{c}"></i>{_esc(_OUTCOME_NAMES[k])}</span>' for k, c in _OUTCOME_COLOURS.items()]
    spans.append('<span>black tick: confirmation (alert); blue line: frame score, red dashes: frame threshold</span>')
    return f'<p class="legend">{"".join(spans)}</p>'


def render_html(report: Mapping[str, Any], thumbnails: Mapping[ThumbnailKey, bytes] | None = None) -> str:
    """The report as one HTML document with inline CSS and SVG and embedded images; nothing is loaded from elsewhere."""
    s = report["summary"]
    title = f"Smokewatch evaluation{': ' + report['model'] if report.get('model') else ''}"
    out = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
           f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"]
    out.append(f'<p class="muted">schema {_esc(report["schema"])}</p>')
    out.append("<h2>Summary</h2>" + _table(["measure", "value"], [[_esc(k), _esc(v)] for k, v in _summary_rows(report)]))
    if report["errors"]:
        out.append('<h2>Problems</h2><ul class="error">' + "".join(f"<li>{_esc(e)}</li>" for e in report["errors"]) + "</ul>")
    out.append("<h2>Precision and recall</h2>" + _pr_svg(report))
    if report.get("sweep"):
        out.append(_sweep_section(report["sweep"]))
    video_rows = []
    for v in report["videos"]:
        name = _esc(v["video"]) + (f'<br><span class="error">{_esc(v["error"])}</span>' if v["error"] else "")
        tta = ", ".join(f"{t:.2f}" for t in v["time_to_alert_s"]) or "–"
        video_rows.append([name, _fmt(v["duration_s"], "s"), _fmt(v["intervals"]), _fmt(v["events"]), _fmt(v["tp"]), _fmt(v["fp"]),
                           _fmt(v["fn"]), _fmt(v["duplicates"]), _fmt(v["ignored"]), tta])
    out.append("<h2>Videos</h2>" + _table(
        ["video", "duration", "intervals", "events", "TP", "FP", "FN", "dup.", "ign.", "time to alert (s)"], video_rows))
    out.append("<h2>Timelines</h2>" + _legend())
    for v in report["videos"]:
        if not v["evaluated"]:
            continue
        out.append(f'<h3>{_esc(v["video"])}</h3>' + _timeline_svg(v, s["tolerance_s"] or 0.0, s["frames"]["threshold"]))
    out.append(_gallery_section(report, thumbnails or {}))
    if report.get("config"):
        config_rows = [[_esc(k), _esc(json.dumps(v, ensure_ascii=False))] for k, v in report["config"].items()]
        out.append("<h2>Configuration</h2>" + _table(["setting", "value"], config_rows, text_columns=(1,)))
    out.append("</body></html>")
    return "\n".join(out)


def write_html(report: Mapping[str, Any], path: Path, thumbnails: Mapping[ThumbnailKey, bytes] | None = None) -> Path:
    """Write ``render_html(report, thumbnails)`` to ``path``; ``thumbnails`` maps (video, t_s) of gallery items to JPEG bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, thumbnails), encoding="utf-8")
    return path


# --- comparison ---------------------------------------------------------------------------------------------------

# (name, where in the report's summary, which direction is better)
_COMPARED = [
    ("event recall", ("recall",), "higher"),
    ("event precision", ("precision",), "higher"),
    ("event F1", ("f1",), "higher"),
    ("false alarms per hour", ("false_alarms_per_hour",), "lower"),
    ("detected (TP)", ("tp",), "higher"),
    ("false alarms (FP)", ("fp",), "lower"),
    ("missed (FN)", ("fn",), "lower"),
    ("duplicates", ("duplicates",), None),
    ("time to alert, median", ("time_to_alert_median_s",), "lower"),
    ("time to alert, 90th percentile", ("time_to_alert_p90_s",), "lower"),
    ("frame precision", ("frames", "precision"), "higher"),
    ("frame recall", ("frames", "recall"), "higher"),
    ("frame average precision", ("frames", "average_precision"), "higher"),
    ("persons found in smoking frames", ("person_frame_recall",), "higher"),
    ("videos evaluated", ("videos",), None),
    ("labeled smoking intervals", ("intervals",), None),
]


def _lookup(summary: Mapping[str, Any], keys: Sequence[str]) -> Any:
    value: Any = summary
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _change(a: float | None, b: float | None, higher_is: str | None) -> str | None:
    if a is None or b is None or higher_is is None:
        return None
    if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
        return "same"
    return "better" if (b > a) == (higher_is == "higher") else "worse"


def _video_counts(video: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if video is None:
        return None
    return {k: video[k] for k in ("evaluated", "intervals", "events", "tp", "fp", "fn", "duplicates", "ignored")}


def build_comparison(report_a: Mapping[str, Any], report_b: Mapping[str, Any], label_a: str = "A", label_b: str = "B") -> Report:
    """Metric-by-metric comparison of two reports; ``change`` tells whether B is better or worse than A."""
    metrics = []
    for name, keys, higher_is in _COMPARED:
        a, b = _lookup(report_a["summary"], keys), _lookup(report_b["summary"], keys)
        delta = _number(b - a) if isinstance(a, int | float) and isinstance(b, int | float) else None
        metrics.append({"name": name, "a": a, "b": b, "delta": delta, "higher_is": higher_is, "change": _change(a, b, higher_is)})
    videos_a = {v["video"]: v for v in report_a["videos"]}
    videos_b = {v["video"]: v for v in report_b["videos"]}
    notes = []
    if set(videos_a) != set(videos_b):
        notes.append(f"the reports cover different videos: only in {label_a}: {sorted(set(videos_a) - set(videos_b))}, "
                     f"only in {label_b}: {sorted(set(videos_b) - set(videos_a))}")
    tolerance_a, tolerance_b = report_a["summary"].get("tolerance_s"), report_b["summary"].get("tolerance_s")
    if tolerance_a != tolerance_b:
        notes.append(f"matching tolerances differ: {tolerance_a} s vs {tolerance_b} s")
    if report_a["summary"]["frames"].get("threshold") != report_b["summary"]["frames"].get("threshold"):
        notes.append("frame thresholds differ, so frame precision and recall are not like for like")
    paired = paired_frame_ap(_clip_frames(videos_a), _clip_frames(videos_b))
    return {
        "schema": COMPARISON_SCHEMA,
        "a": {"label": label_a, "model": report_a.get("model", "")},
        "b": {"label": label_b, "model": report_b.get("model", "")},
        "metrics": metrics,
        "frame_ap_difference": None if paired is None else paired.as_json(),
        "videos": [{"video": name, "a": _video_counts(videos_a.get(name)), "b": _video_counts(videos_b.get(name))}
                   for name in sorted(set(videos_a) | set(videos_b))],
        "notes": notes,
    }


def _clip_frames(videos: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[float, bool]]]:
    """Each evaluated clip's counted frames, (score, truly positive), from a report's video entries."""
    def spans(video: Mapping[str, Any], kind: str) -> list[tuple[float, float]]:
        return [(label["start_s"], label["end_s"]) for label in video["labels"] if label["kind"] == kind]

    return {name: scored_frames(video["frame_scores"], spans(video, "smoking"), spans(video, "ignore"))
            for name, video in videos.items() if video["evaluated"]}


def _compare_cell(a: Any, b: Any, higher_is: str | None, style: str = "") -> str:
    change = _change(a, b, higher_is) if isinstance(a, int | float) and isinstance(b, int | float) else None
    css = f' class="{change}"' if change in ("better", "worse") else ""
    return f"<span{css}>{_esc(_fmt(b, style))}</span>"


def render_comparison_html(comparison: Mapping[str, Any]) -> str:
    """The comparison as one self-contained HTML page: B's values in green where better than A, red where worse."""
    a, b = comparison["a"], comparison["b"]
    title = f"Smokewatch evaluation: {a['label']} vs {b['label']}"
    out = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
           f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"]
    out.append(f'<p>{_esc(a["label"])}: {_esc(a["model"] or "–")}<br>{_esc(b["label"])}: {_esc(b["model"] or "–")}</p>')
    if comparison["notes"]:
        out.append('<ul class="error">' + "".join(f"<li>{_esc(n)}</li>" for n in comparison["notes"]) + "</ul>")
    rows, classes = [], []
    for m in comparison["metrics"]:
        style = ("pct" if any(w in m["name"] for w in ("recall", "precision", "F1")) else
                 "rate" if "per hour" in m["name"] else "s" if m["name"].startswith("time to alert") else "")
        delta = m["delta"]
        delta_text = ("–" if delta is None else f"{100 * delta:+.1f} pt" if style == "pct" else
                      f"{delta:+.2f} s" if style == "s" else f"{delta:+.3g}")
        rows.append([_esc(m["name"]), _esc(_fmt(m["a"], style)), _esc(_fmt(m["b"], style)), _esc(delta_text)])
        classes.append(m["change"] if m["change"] in ("better", "worse") else "")
    out.append("<h2>Summary</h2>" + _table(["measure", _esc(a["label"]), _esc(b["label"]), "change"], rows, classes))
    if comparison["frame_ap_difference"]:
        out.append(f'<p>Frame average precision, {_esc(b["label"])} minus {_esc(a["label"])}, clips resampled: '
                   f'{_esc(comparison["frame_ap_difference"]["text"])}. An interval that holds 0 does not tell the two '
                   "apart on these clips.</p>")
    video_rows = []
    for v in comparison["videos"]:
        va, vb = v["a"] or {}, v["b"] or {}
        cells = [_esc(v["video"])]
        for key, higher_is in (("tp", "higher"), ("fp", "lower"), ("fn", "lower"), ("duplicates", None)):
            cells.append(f'{_esc(_fmt(va.get(key)))} → {_compare_cell(va.get(key), vb.get(key), higher_is)}')
        video_rows.append(cells)
    out.append("<h2>Videos</h2>" + _table(
        ["video", f"TP {_esc(a['label'])} → {_esc(b['label'])}", "FP", "FN", "duplicates"], video_rows))
    out.append('<p class="muted">Green: better in ' + _esc(b["label"]) + "; red: worse.</p></body></html>")
    return "\n".join(out)


def write_comparison_html(comparison: Mapping[str, Any], path: Path) -> Path:
    """Write ``render_comparison_html(comparison)`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_comparison_html(comparison), encoding="utf-8")
    return path

