"""Scores the smoking detector against labeled clips: label file, event matching, metrics, sweeps and reports.

Pure Python; OpenCV is imported only by ``evaluation.report.extract_thumbnail``.
"""

from evaluation.labels import LabeledInterval, LabelFileError, LabelSet, load_labels
from evaluation.matching import (
    DEFAULT_TOLERANCE_S,
    EventOutcome,
    FrameScore,
    MatchedPair,
    PredictedEvent,
    VideoMatch,
    VideoRun,
    match_events,
)
from evaluation.metrics import (
    EvaluationResult,
    EventMetrics,
    FrameMetrics,
    SweepResult,
    SweepRow,
    VideoResult,
    evaluate,
    summarize_sweep,
    sweep,
)
from evaluation.report import (
    build_comparison,
    build_report,
    collect_thumbnails,
    extract_thumbnail,
    gallery_items,
    thumbnail_key,
    write_comparison_html,
    write_html,
    write_json,
)

__all__ = [
    "DEFAULT_TOLERANCE_S", "EvaluationResult", "EventMetrics", "EventOutcome", "FrameMetrics", "FrameScore", "LabelFileError",
    "LabelSet", "LabeledInterval", "MatchedPair", "PredictedEvent", "SweepResult", "SweepRow", "VideoMatch", "VideoResult",
    "VideoRun", "build_comparison", "build_report", "collect_thumbnails", "evaluate", "extract_thumbnail", "gallery_items",
    "load_labels", "match_events", "summarize_sweep", "sweep", "thumbnail_key", "write_comparison_html", "write_html", "write_json",
]
