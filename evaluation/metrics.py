"""Event and frame metrics over a labeled video set, and scoring of a parameter sweep.

Definitions (also in ``evaluation/LABELS.md``):

- ``precision = TP / (TP + FP)``; None when there are no counted predictions (TP + FP = 0).
- ``recall = TP / (TP + FN)``; None when there are no labeled smoking intervals.
- ``f1 = 2 TP / (2 TP + FP + FN)`` (the harmonic mean where both are defined, 0.0 when nothing was found);
  None only when there are neither intervals nor counted predictions.
- Duplicates and ignored events enter none of these.
- ``false_alarms_per_hour = FP / hours without smoking``, where the time without smoking is each video's duration minus
  the union of its labeled smoking intervals and ignore spans (clipped to the clip); None when that time is 0.
- Time to alert of a matched pair is ``event.confirmed_s - interval.start_s`` and may be negative; its median and 90th
  percentile use linear interpolation between the sorted values.
- Frame metrics: a frame is predicted positive when ``score >= threshold`` and truly positive when ``t_s`` lies inside a
  labeled smoking interval (closed range, no tolerance); frames inside an ignore span are left out.
- Videos whose run failed (``VideoRun.error``) or that have no run are listed with their error and left out of all totals.
- Paired comparison of two models' frame-level average precision on the same clips: the clips are drawn with
  replacement (a bootstrap over clips, since frames of one clip are not independent), both models are scored on each
  draw, and the interval is the central ``confidence`` share of the differences B - A (``paired_bootstrap``, which
  ``evaluation.images`` uses for AP50 on the same images).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.labels import LabeledInterval, LabelSet
from evaluation.matching import DEFAULT_TOLERANCE_S, FrameScore, VideoMatch, VideoRun, match_events

DEFAULT_FRAME_THRESHOLD = 0.5
DEFAULT_MAX_FALSE_ALARMS_PER_HOUR = 1.0
MAX_CURVE_POINTS = 200


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0."""
    return numerator / denominator if denominator else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between sorted values; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def union_length(spans: Iterable[tuple[float, float]], clip_start: float = 0.0, clip_end: float = math.inf) -> float:
    """Total length covered by the spans, counted only inside [clip_start, clip_end]."""
    clipped = sorted((max(s, clip_start), min(e, clip_end)) for s, e in spans)
    total, current_start, current_end = 0.0, None, None
    for start, end in clipped:
        if end <= start:
            continue
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


@dataclass(frozen=True)
class EventMetrics:
    """Event-level totals and rates over a set of videos."""

    videos: int
    intervals: int
    events: int
    tp: int
    fp: int
    fn: int
    duplicates: int
    ignored: int
    duration_s: float
    negative_s: float  # video time without smoking or ignore spans
    precision: float | None
    recall: float | None
    f1: float | None
    false_alarms_per_hour: float | None
    time_to_alert_median_s: float | None
    time_to_alert_p90_s: float | None


@dataclass(frozen=True)
class FrameMetrics:
    """Frame-level counts at one score threshold."""

    threshold: float
    frames: int  # frames counted (not excluded)
    excluded: int  # frames inside ignore spans
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None


@dataclass(frozen=True)
class FramePRPoint:
    threshold: float
    precision: float
    recall: float | None


@dataclass(frozen=True)
class PairedDifference:
    """A measure of model B minus model A on the same samples (clips or images), with a paired bootstrap interval."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    confidence: float
    samples: int
    unit: str  # what was drawn with replacement: "clips", "images"
    resamples: int  # draws on which both measures were defined

    def describe(self) -> str:
        return (f"{self.difference:+.3f} ({self.confidence:.0%} interval {self.low:+.3f} to {self.high:+.3f}, "
                f"{self.samples} {self.unit}, {self.resamples} draws)")

    def as_json(self) -> dict[str, Any]:
        """The fields, and ``describe()`` as ``text``, for the JSON reports."""
        return {**asdict(self), "text": self.describe()}


@dataclass
class VideoResult:
    """One video: its labels, its run, and how the events were counted. ``match`` is None when the video was left out."""

    video: str
    duration_s: float
    labels: list[LabeledInterval]
    run: VideoRun | None
    match: VideoMatch | None
    smoking_s: float
    negative_s: float
    error: str | None = None

    @property
    def evaluated(self) -> bool:
        return self.match is not None

    @property
    def smoking_intervals(self) -> list[LabeledInterval]:
        return [i for i in self.labels if i.kind == "smoking"]

    @property
    def ignore_spans(self) -> list[LabeledInterval]:
        return [i for i in self.labels if i.kind == "ignore"]

    @property
    def time_to_alert_s(self) -> list[float]:
        return [pair.time_to_alert_s for pair in self.match.matches] if self.match else []

    @property
    def frames(self) -> list[FrameScore]:
        return self.run.frames if self.run else []


@dataclass
class EvaluationResult:
    """Everything ``evaluate`` computed; ``errors`` holds label-file and run problems in the order found."""

    videos: list[VideoResult]
    summary: EventMetrics
    frames: FrameMetrics
    frame_pr_curve: list[FramePRPoint]
    frame_average_precision: float | None
    tolerance_s: float
    errors: list[str] = field(default_factory=list)

    def video(self, name: str) -> VideoResult:
        return next(v for v in self.videos if v.video == name)


def event_metrics(videos: Sequence[VideoResult]) -> EventMetrics:
    """Totals and rates over the evaluated videos (see the module docstring for the definitions)."""
    counted = [v for v in videos if v.match is not None]
    tp = sum(len(v.match.matches) for v in counted if v.match)
    fn = sum(len(v.match.misses) for v in counted if v.match)
    fp = sum(len(v.match.false_alarms) for v in counted if v.match)
    duplicates = sum(len(v.match.duplicates) for v in counted if v.match)
    ignored = sum(len(v.match.ignored) for v in counted if v.match)
    negative_s = sum(v.negative_s for v in counted)
    time_to_alert = [t for v in counted for t in v.time_to_alert_s]
    return EventMetrics(
        videos=len(counted),
        intervals=tp + fn,
        events=tp + fp + duplicates + ignored,
        tp=tp,
        fp=fp,
        fn=fn,
        duplicates=duplicates,
        ignored=ignored,
        duration_s=sum(v.duration_s for v in counted),
        negative_s=negative_s,
        precision=ratio(tp, tp + fp),
        recall=ratio(tp, tp + fn),
        f1=ratio(2 * tp, 2 * tp + fp + fn),
        false_alarms_per_hour=ratio(fp * 3600.0, negative_s),
        time_to_alert_median_s=percentile(time_to_alert, 50),
        time_to_alert_p90_s=percentile(time_to_alert, 90),
    )


def _inside(t: float, spans: Iterable[tuple[float, float]]) -> bool:
    return any(start <= t <= end for start, end in spans)


def _labeled_frames(videos: Sequence[VideoResult]) -> tuple[list[tuple[float, bool]], int]:
    """(score, truly positive) for every counted frame of the evaluated videos, and the number of excluded frames."""
    scored: list[tuple[float, bool]] = []
    excluded = 0
    for v in videos:
        if v.match is None:
            continue
        counted = scored_frames(((f.t_s, f.score) for f in v.frames),
                                [(i.start_s, i.end_s) for i in v.smoking_intervals],
                                [(i.start_s, i.end_s) for i in v.ignore_spans])
        excluded += len(v.frames) - len(counted)
        scored += counted
    return scored, excluded


def frame_metrics(videos: Sequence[VideoResult], threshold: float = DEFAULT_FRAME_THRESHOLD) -> FrameMetrics:
    """Frame-level precision and recall of ``score >= threshold`` over the evaluated videos."""
    scored, excluded = _labeled_frames(videos)
    tp = sum(1 for s, positive in scored if positive and s >= threshold)
    fp = sum(1 for s, positive in scored if not positive and s >= threshold)
    fn = sum(1 for s, positive in scored if positive and s < threshold)
    tn = len(scored) - tp - fp - fn
    return FrameMetrics(threshold, len(scored), excluded, tp, fp, fn, tn, ratio(tp, tp + fp), ratio(tp, tp + fn))


def frame_pr_curve(videos: Sequence[VideoResult], max_points: int = MAX_CURVE_POINTS) -> tuple[list[FramePRPoint], float | None]:
    """Frame precision/recall at every distinct score (highest first, at most ``max_points`` kept) and the average precision.

    Frames scoring 0 are never predicted positive. Average precision is sum((R_k - R_k-1) * P_k) over all thresholds;
    None when no frame is truly positive.
    """
    points, average_precision = _pr_points(_labeled_frames(videos)[0])
    if len(points) > max_points:
        step = (len(points) - 1) / (max_points - 1)
        points = [points[round(k * step)] for k in range(max_points)]
    return points, average_precision


def _pr_points(scored: Sequence[tuple[float, bool]]) -> tuple[list[FramePRPoint], float | None]:
    positives = sum(1 for _, positive in scored if positive)
    ordered = sorted((s for s in scored if s[0] > 0), key=lambda s: -s[0])
    points: list[FramePRPoint] = []
    tp = fp = 0
    average_precision, previous_recall = 0.0, 0.0
    for k, (score, positive) in enumerate(ordered):
        tp, fp = tp + positive, fp + (not positive)
        if k + 1 < len(ordered) and ordered[k + 1][0] == score:
            continue
        recall = ratio(tp, positives)
        precision = tp / (tp + fp)
        points.append(FramePRPoint(score, precision, recall))
        if recall is not None:
            average_precision += (recall - previous_recall) * precision
            previous_recall = recall
    return points, (average_precision if positives else None)


def paired_bootstrap(samples: int, measure_a: Callable[[Sequence[int]], float | None],
                     measure_b: Callable[[Sequence[int]], float | None], unit: str, resamples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> PairedDifference | None:
    """B's measure minus A's over samples 0..samples-1, with an interval from drawing the samples with replacement
    and measuring both models on each draw. A measure returns None where it is undefined (a draw without a positive);
    such draws are left out, and None comes back when the whole set, or every draw, is undefined."""
    everything = range(samples)
    a, b = measure_a(everything), measure_b(everything)
    if a is None or b is None:
        return None
    rng = random.Random(seed)
    differences = []
    for _ in range(resamples):
        draw = [rng.randrange(samples) for _ in everything]
        draw_a, draw_b = measure_a(draw), measure_b(draw)
        if draw_a is not None and draw_b is not None:
            differences.append(draw_b - draw_a)
    if not differences:
        return None
    differences.sort()
    tail = (1 - confidence) / 2
    low = differences[int(tail * (len(differences) - 1))]
    high = differences[math.ceil((1 - tail) * (len(differences) - 1))]
    return PairedDifference(a, b, b - a, low, high, confidence, samples, unit, len(differences))


def paired_frame_ap(clips_a: Mapping[str, Sequence[tuple[float, bool]]], clips_b: Mapping[str, Sequence[tuple[float, bool]]],
                    resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> PairedDifference | None:
    """B's frame-level AP minus A's over the clips both scored, (score, truly positive) per counted frame, with a
    bootstrap interval over clips; None when no clip is in both, no frame is truly positive, or no draw held a
    truly positive frame."""
    names = sorted(set(clips_a) & set(clips_b))

    def frame_ap(clips: Mapping[str, Sequence[tuple[float, bool]]]) -> Callable[[Sequence[int]], float | None]:
        return lambda draw: _pr_points([f for i in draw for f in clips[names[i]]])[1]

    return paired_bootstrap(len(names), frame_ap(clips_a), frame_ap(clips_b), "clips", resamples, confidence, seed)


def scored_frames(frame_scores: Iterable[tuple[float, float]], smoking: Iterable[tuple[float, float]],
                  ignore: Iterable[tuple[float, float]]) -> list[tuple[float, bool]]:
    """(score, truly positive) for each (t_s, score) of one clip outside its ignore spans; spans are (start_s, end_s)."""
    smoking, ignore = list(smoking), list(ignore)
    return [(score, _inside(t, smoking)) for t, score in frame_scores if not _inside(t, ignore)]


def evaluate(
    labels: LabelSet,
    runs: Sequence[VideoRun],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    frame_threshold: float = DEFAULT_FRAME_THRESHOLD,
) -> EvaluationResult:
    """Match every labeled video's run to its labels and compute all metrics. Runs of unlabeled videos are reported and skipped."""
    errors = list(labels.errors)
    runs_by_video: dict[str, VideoRun] = {}
    for given in runs:
        if given.video in runs_by_video:
            errors.append(f"{given.video}: more than one run given; the first one is used")
        elif given.video not in labels.videos:
            errors.append(f"{given.video}: run for a video that has no labels; left out")
        else:
            runs_by_video[given.video] = given

    videos: list[VideoResult] = []
    for name in sorted(labels.videos):
        intervals = labels.videos[name]
        run = runs_by_video.get(name)
        if run is None or run.error is not None:
            error = f"{name}: no run for this labeled video" if run is None else f"{name}: run failed: {run.error}"
            errors.append(error + "; left out of the totals")
            duration = run.duration_s if run else 0.0
            videos.append(VideoResult(name, duration, intervals, run, None, 0.0, 0.0, error))
            continue
        duration = max(run.duration_s, 0.0)
        smoking_s = union_length(((i.start_s, i.end_s) for i in intervals if i.kind == "smoking"), 0.0, duration)
        covered_s = union_length(((i.start_s, i.end_s) for i in intervals), 0.0, duration)
        match = match_events(name, intervals, run.events, tolerance_s)
        videos.append(VideoResult(name, duration, intervals, run, match, smoking_s, max(duration - covered_s, 0.0)))

    curve, average_precision = frame_pr_curve(videos)
    return EvaluationResult(
        videos=videos,
        summary=event_metrics(videos),
        frames=frame_metrics(videos, frame_threshold),
        frame_pr_curve=curve,
        frame_average_precision=average_precision,
        tolerance_s=tolerance_s,
        errors=errors,
    )


@dataclass(frozen=True)
class SweepRow:
    """Metrics at one grid point; ``index`` is its position in the grid."""

    index: int
    params: dict[str, Any]
    metrics: EventMetrics


@dataclass
class SweepResult:
    """All grid points, the two chosen operating points, and the precision-recall frontier of the grid."""

    rows: list[SweepRow]
    max_false_alarms_per_hour: float
    best_f1: SweepRow | None
    best_recall_within_false_alarms: SweepRow | None
    pr_curve: list[tuple[float, float]]  # (recall, precision), recall ascending


def _within_false_alarm_budget(metrics: EventMetrics, limit: float) -> bool:
    if metrics.false_alarms_per_hour is None:
        return metrics.fp == 0
    return metrics.false_alarms_per_hour <= limit + 1e-12


def _rate_or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def pr_frontier(rows: Sequence[SweepRow]) -> list[tuple[float, float]]:
    """(recall, precision) of the grid points that no other point beats on both, recall ascending."""
    points = sorted({(r.metrics.recall, r.metrics.precision) for r in rows
                     if r.metrics.recall is not None and r.metrics.precision is not None}, reverse=True)
    frontier: list[tuple[float, float]] = []
    for recall, precision in points:
        if not frontier or precision > frontier[-1][1]:
            frontier.append((recall, precision))
    return frontier[::-1]


def summarize_sweep(rows: Sequence[SweepRow], max_false_alarms_per_hour: float = DEFAULT_MAX_FALSE_ALARMS_PER_HOUR) -> SweepResult:
    """Pick the operating points from computed rows.

    Best F1: highest F1, then higher recall, fewer false alarms per hour, earlier grid point. Best recall within the budget:
    among rows with false alarms per hour <= the limit (or no false alarm where that rate is undefined), the highest recall,
    then higher precision, fewer false alarms per hour, earlier grid point. Rows with an undefined F1 or recall are not picked.
    """
    with_f1 = [r for r in rows if r.metrics.f1 is not None]
    best_f1 = min(with_f1, key=lambda r: (-(r.metrics.f1 or 0.0), -(r.metrics.recall or 0.0),
                                          _rate_or_inf(r.metrics.false_alarms_per_hour), r.index), default=None)
    allowed = [r for r in rows if r.metrics.recall is not None and _within_false_alarm_budget(r.metrics, max_false_alarms_per_hour)]
    best_recall = min(allowed, key=lambda r: (-(r.metrics.recall or 0.0), -(r.metrics.precision or 0.0),
                                              _rate_or_inf(r.metrics.false_alarms_per_hour), r.index), default=None)
    return SweepResult(list(rows), max_false_alarms_per_hour, best_f1, best_recall, pr_frontier(rows))


def sweep(
    labels: LabelSet,
    grid: Sequence[Mapping[str, Any]],
    rescore: Callable[[Mapping[str, Any]], Sequence[VideoRun]],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    max_false_alarms_per_hour: float = DEFAULT_MAX_FALSE_ALARMS_PER_HOUR,
) -> SweepResult:
    """Score every grid point: ``rescore(params)`` re-runs the event logic over recorded evidence and returns the runs."""
    rows = []
    for index, params in enumerate(grid):
        result = evaluate(labels, rescore(params), tolerance_s)
        rows.append(SweepRow(index, dict(params), result.summary))
    return summarize_sweep(rows, max_false_alarms_per_hour)
