"""Matching, metrics and sweep scoring on hand-built labels and predictions with known answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from evaluation.labels import LabeledInterval, LabelSet
from evaluation.matching import FrameScore, PredictedEvent, VideoRun, match_events
from evaluation.metrics import EventMetrics, SweepRow, evaluate, percentile, summarize_sweep, sweep, union_length


def smoking(video: str, start: float, end: float, person: int = 1) -> LabeledInterval:
    return LabeledInterval(video, person, start, end, "clear", "", "smoking")


def ignore(video: str, start: float, end: float) -> LabeledInterval:
    return LabeledInterval(video, 0, start, end, "", "unclear", "ignore")


def event(video: str, start: float, end: float, confirmed: float | None = None, track: int = 1, score: float = 0.9) -> PredictedEvent:
    return PredictedEvent(video, track, start, start if confirmed is None else confirmed, end, score)


def outcomes(video: str, labels: list[LabeledInterval], events: list[PredictedEvent], tolerance_s: float = 1.0) -> list[str]:
    return [o.outcome for o in match_events(video, labels, events, tolerance_s).outcomes]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (13.0, 14.0, "tp"),  # starts exactly at interval end + tolerance: closed ranges touch
        (13.01, 14.0, "false_alarm"),  # just outside after the interval
        (7.0, 9.0, "tp"),  # ends exactly at interval start - tolerance
        (7.0, 8.99, "false_alarm"),  # just outside before the interval
        (12.5, 12.9, "tp"),  # fully inside the tolerance margin
        (9.5, 12.5, "tp"),
    ],
)
def test_tolerance_boundary(start: float, end: float, expected: str) -> None:
    assert outcomes("v", [smoking("v", 10.0, 12.0)], [event("v", start, end)]) == [expected]


def test_tolerance_zero_needs_real_overlap_but_touching_counts() -> None:
    labels = [smoking("v", 10.0, 12.0)]
    assert outcomes("v", labels, [event("v", 12.0, 13.0)], tolerance_s=0.0) == ["tp"]
    assert outcomes("v", labels, [event("v", 12.1, 13.0)], tolerance_s=0.0) == ["false_alarm"]


def test_matching_is_optimal_not_greedy() -> None:
    # Greedy by overlap would pair the long event with interval A (overlap 11 s) and miss B; the optimum matches both.
    a, b = smoking("v", 0.0, 10.0, person=1), smoking("v", 12.0, 14.0, person=2)
    long_event, short_event = event("v", 0.0, 13.0, track=1), event("v", 9.0, 10.0, track=2)
    match = match_events("v", [a, b], [long_event, short_event])
    assert {(p.interval.person, p.event.track_id) for p in match.matches} == {(1, 2), (2, 1)}
    assert match.misses == [] and match.false_alarms == [] and match.duplicates == []


def test_two_people_in_one_video() -> None:
    labels = [smoking("v", 0.0, 10.0, person=1), smoking("v", 5.0, 15.0, person=2), smoking("v", 30.0, 35.0, person=1)]
    events = [event("v", 0.0, 3.0, track=7), event("v", 6.0, 14.0, track=8)]
    match = match_events("v", labels, events)
    assert len(match.matches) == 2
    assert [(m.start_s, m.person) for m in match.misses] == [(30.0, 1)]
    assert match.false_alarms == []


def test_extra_events_on_a_matched_interval_are_duplicates_not_false_alarms() -> None:
    labels = [smoking("v", 0.0, 10.0)]
    events = [event("v", 0.0, 3.0, confirmed=1.0, track=1), event("v", 5.0, 9.0, confirmed=6.0, track=2), event("v", 20.0, 22.0, track=3)]
    match = match_events("v", labels, events)
    assert [p.event.track_id for p in match.matches] == [2]  # the larger overlap (4 s) wins
    assert [e.track_id for e in match.duplicates] == [1]
    assert [e.track_id for e in match.false_alarms] == [3]
    assert match.matches[0].time_to_alert_s == pytest.approx(6.0)
    result = evaluate(LabelSet({"v": labels}), [VideoRun("v", 30.0, events)])
    assert (result.summary.tp, result.summary.fp, result.summary.fn, result.summary.duplicates) == (1, 1, 0, 1)
    assert result.summary.precision == pytest.approx(0.5)
    assert result.summary.events == 3


def test_touching_intervals_of_one_person() -> None:
    labels = [smoking("v", 0.0, 5.0), smoking("v", 5.0, 10.0)]
    assert outcomes("v", labels, [event("v", 0.0, 4.0), event("v", 6.0, 10.0)]) == ["tp", "tp"]
    one_long = match_events("v", labels, [event("v", 2.0, 8.0)])
    assert len(one_long.matches) == 1 and len(one_long.misses) == 1


def test_ignore_spans_count_neither_way() -> None:
    labels = [ignore("v", 20.0, 30.0)]
    events = [event("v", 25.0, 26.0, track=1), event("v", 30.5, 31.0, track=2), event("v", 31.5, 33.0, track=3)]
    assert outcomes("v", labels, events) == ["ignored", "ignored", "false_alarm"]
    result = evaluate(LabelSet({"v": labels}), [VideoRun("v", 100.0, events)])
    s = result.summary
    assert (s.tp, s.fp, s.fn, s.ignored) == (0, 1, 0, 1 + 1)
    assert s.negative_s == pytest.approx(90.0)  # the ignore span is not time without smoking
    assert s.false_alarms_per_hour == pytest.approx(3600.0 / 90.0)


def test_event_on_smoking_inside_ignore_span_is_still_a_match_and_misses_still_count() -> None:
    labels = [smoking("v", 10.0, 12.0), ignore("v", 8.0, 20.0), smoking("v", 15.0, 16.0, person=2)]
    match = match_events("v", labels, [event("v", 10.0, 11.0)])
    assert len(match.matches) == 1
    assert [m.person for m in match.misses] == [2]


def test_empty_video_has_undefined_rates() -> None:
    result = evaluate(LabelSet({"empty": []}), [VideoRun("empty", 0.0, [], [])])
    s = result.summary
    assert (s.videos, s.intervals, s.events, s.tp, s.fp, s.fn) == (1, 0, 0, 0, 0, 0)
    assert s.precision is None and s.recall is None and s.f1 is None
    assert s.false_alarms_per_hour is None and s.time_to_alert_median_s is None
    assert result.frames.frames == 0 and result.frames.precision is None and result.frames.recall is None
    assert result.frame_pr_curve == [] and result.frame_average_precision is None


def test_video_with_only_false_alarms() -> None:
    events = [event("neg", 10.0, 12.0, track=1), event("neg", 100.0, 101.0, track=2)]
    result = evaluate(LabelSet({"neg": []}), [VideoRun("neg", 1800.0, events)])
    s = result.summary
    assert (s.tp, s.fp, s.fn) == (0, 2, 0)
    assert s.precision == 0.0 and s.recall is None and s.f1 == 0.0
    assert s.false_alarms_per_hour == pytest.approx(4.0)


def test_no_predictions_on_smoking_gives_zero_recall_and_undefined_precision() -> None:
    result = evaluate(LabelSet({"v": [smoking("v", 1.0, 2.0)]}), [VideoRun("v", 10.0, [])])
    assert result.summary.precision is None and result.summary.recall == 0.0 and result.summary.f1 == 0.0


def test_per_video_counts_and_false_alarm_rate() -> None:
    labels = LabelSet({
        "a": [smoking("a", 10.0, 20.0), smoking("a", 40.0, 50.0)],
        "b": [smoking("b", 0.0, 5.0, person=1), smoking("b", 0.0, 5.0, person=2)],
        "c": [],
    })
    runs = [
        VideoRun("a", 60.0, [event("a", 9.5, 15.0, confirmed=9.8), event("a", 42.0, 48.0, confirmed=44.0)]),
        VideoRun("b", 10.0, [event("b", 0.0, 5.0, confirmed=3.0, track=1)]),
        VideoRun("c", 30.0, [event("c", 1.0, 2.0)]),
    ]
    result = evaluate(labels, runs)
    s = result.summary
    assert (s.videos, s.intervals, s.events, s.tp, s.fp, s.fn, s.duplicates) == (3, 4, 4, 3, 1, 1, 0)
    assert s.precision == pytest.approx(3 / 4) and s.recall == pytest.approx(3 / 4) and s.f1 == pytest.approx(0.75)
    assert s.negative_s == pytest.approx(40.0 + 5.0 + 30.0)
    assert s.false_alarms_per_hour == pytest.approx(3600.0 / 75.0)
    assert s.time_to_alert_median_s == pytest.approx(3.0)  # values -0.2, 3.0, 4.0
    assert s.time_to_alert_p90_s == pytest.approx(3.0 + 0.8 * 1.0)
    rows = {v.video: v for v in result.videos}
    assert rows["a"].time_to_alert_s == pytest.approx([-0.2, 4.0])  # alert before the labeled start stays negative
    assert (len(rows["b"].match.matches), len(rows["b"].match.misses)) == (1, 1)  # type: ignore[union-attr]
    assert rows["c"].smoking_s == 0.0 and rows["a"].smoking_s == pytest.approx(20.0)


def test_failed_and_missing_runs_are_left_out_and_reported() -> None:
    labels = LabelSet({"ok": [smoking("ok", 0.0, 2.0)], "broken": [smoking("broken", 0.0, 2.0)], "absent": []})
    runs = [VideoRun("ok", 10.0, [event("ok", 0.5, 1.5)]), VideoRun("broken", 5.0, error="cannot decode"),
            VideoRun("stranger", 5.0, [event("stranger", 0.0, 1.0)])]
    result = evaluate(labels, runs)
    assert (result.summary.videos, result.summary.tp, result.summary.fn, result.summary.fp) == (1, 1, 0, 0)
    assert [v.video for v in result.videos if not v.evaluated] == ["absent", "broken"]
    joined = "\n".join(result.errors)
    assert "broken: run failed: cannot decode" in joined
    assert "absent: no run" in joined
    assert "stranger: run for a video that has no labels" in joined


def test_frame_metrics_exclude_ignore_spans() -> None:
    labels = LabelSet({"v": [smoking("v", 2.0, 4.0), ignore("v", 8.0, 9.0)]})
    scores = {0: 0.1, 1: 0.7, 2: 0.9, 3: 0.3, 4: 0.6, 5: 0.0, 6: 0.2, 7: 0.8, 8: 0.95, 9: 0.99, 10: 0.0}
    frames = [FrameScore("v", float(t), s) for t, s in scores.items()]
    result = evaluate(labels, [VideoRun("v", 10.0, [], frames)], frame_threshold=0.6)
    f = result.frames
    # positives at t = 2, 3, 4 (closed interval); t = 8, 9 excluded; predicted: 1, 2, 4, 7
    assert (f.frames, f.excluded, f.tp, f.fp, f.fn, f.tn) == (9, 2, 2, 2, 1, 4)
    assert f.precision == pytest.approx(0.5) and f.recall == pytest.approx(2 / 3)
    curve = [(p.threshold, p.precision, p.recall) for p in result.frame_pr_curve]
    assert curve[0] == (0.9, 1.0, pytest.approx(1 / 3))
    assert curve[-1][0] == 0.1 and curve[-1][2] == pytest.approx(1.0)
    # ranked: .9 P, .8 N, .7 N, .6 P, .3 P, .2 N, .1 N -> AP = 1/3 * 1 + 1/3 * 2/4 + 1/3 * 3/5
    assert result.frame_average_precision == pytest.approx((1 + 0.5 + 0.6) / 3)


def test_percentile_and_union_helpers() -> None:
    assert percentile([], 50) is None
    assert percentile([4.0, 1.0, 3.0, 2.0, 10.0], 50) == 3.0
    assert percentile([4.0, 1.0, 3.0, 2.0, 10.0], 90) == pytest.approx(7.6)
    assert union_length([(0, 5), (5, 10), (8, 12), (20, 30)], 0, 25) == pytest.approx(17.0)


def metrics(tp: int, fp: int, fn: int, negative_s: float = 3600.0) -> EventMetrics:
    def rate(a: float, b: float) -> float | None:
        return a / b if b else None

    return EventMetrics(1, tp + fn, tp + fp, tp, fp, fn, 0, 0, negative_s, negative_s, rate(tp, tp + fp), rate(tp, tp + fn),
                        rate(2 * tp, 2 * tp + fp + fn), rate(fp * 3600, negative_s), None, None)


def test_summarize_sweep_picks_operating_points_and_frontier() -> None:
    rows = [
        SweepRow(0, {"t": 0.9}, metrics(tp=2, fp=0, fn=8)),  # P 1.0, R 0.2, F1 .333
        SweepRow(1, {"t": 0.7}, metrics(tp=6, fp=1, fn=4)),  # P .857, R .6, F1 .706
        SweepRow(2, {"t": 0.5}, metrics(tp=8, fp=4, fn=2)),  # P .667, R .8, F1 .727
        SweepRow(3, {"t": 0.3}, metrics(tp=8, fp=9, fn=2)),  # dominated by row 2
        SweepRow(4, {"t": 0.1}, metrics(tp=10, fp=30, fn=0)),  # P .25, R 1.0
    ]
    result = summarize_sweep(rows, max_false_alarms_per_hour=2.0)
    assert result.best_f1 is not None and result.best_f1.index == 2
    assert result.best_recall_within_false_alarms is not None and result.best_recall_within_false_alarms.index == 1
    assert result.pr_curve == [(0.2, 1.0), (0.6, pytest.approx(6 / 7)), (0.8, pytest.approx(8 / 12)), (1.0, 0.25)]
    assert summarize_sweep(rows, max_false_alarms_per_hour=0.0).best_recall_within_false_alarms.index == 0  # type: ignore[union-attr]


def test_sweep_calls_rescore_for_each_grid_point() -> None:
    labels = LabelSet({"s": [smoking("s", 10.0, 20.0)], "n": []})
    candidate_events = {"s": [event("s", 11.0, 19.0, score=0.8)], "n": [event("n", 5.0, 6.0, score=0.6)]}
    seen: list[float] = []

    def rescore(params: Mapping[str, Any]) -> list[VideoRun]:
        seen.append(params["min_score"])
        return [VideoRun(v, 3600.0, [e for e in evs if e.score >= params["min_score"]]) for v, evs in candidate_events.items()]

    result = sweep(labels, [{"min_score": 0.9}, {"min_score": 0.7}, {"min_score": 0.5}], rescore, max_false_alarms_per_hour=0.5)
    assert seen == [0.9, 0.7, 0.5]
    assert [(r.metrics.tp, r.metrics.fp) for r in result.rows] == [(0, 0), (1, 0), (1, 1)]
    assert result.best_f1 is not None and result.best_f1.params == {"min_score": 0.7}
    assert result.best_recall_within_false_alarms is not None and result.best_recall_within_false_alarms.index == 1
    assert result.rows[0].metrics.f1 == 0.0 and result.rows[0].metrics.precision is None


def test_matching_is_deterministic_whatever_the_input_order() -> None:
    labels = [smoking("v", 0.0, 4.0), smoking("v", 3.0, 8.0, person=2)]
    events = [event("v", 0.0, 5.0, track=1), event("v", 2.0, 7.0, track=2), event("v", 4.0, 9.0, track=3)]
    first = match_events("v", labels, events)
    second = match_events("v", labels[::-1], events[::-1])
    assert [(p.interval, p.event) for p in first.matches] == [(p.interval, p.event) for p in second.matches]
    assert first.outcomes == second.outcomes
