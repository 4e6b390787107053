"""Prediction types the pipeline runner fills in, and one-to-one matching of predicted events to labeled smoking intervals.

Rules (also in ``evaluation/LABELS.md``):

- An event ``[start_s, end_s]`` can match a smoking interval of the same video when it overlaps
  ``[interval.start_s - tolerance_s, interval.end_s + tolerance_s]``. Both ranges are closed: an event that ends exactly at
  ``interval.start_s - tolerance_s`` still matches. The default tolerance is 1.0 s (labels were read on a 0.5 s grid and
  the true end can be one step later).
- Each interval matches at most one event and each event at most one interval. The matching is optimal: first the most
  matched pairs, then, among those, the largest total overlap (with tolerance). Persons and track ids are not compared.
- An unmatched event that overlaps a smoking interval (with tolerance) is a *duplicate*: that interval is already matched,
  so the same smoking was detected again. Duplicates are counted and reported but are not false alarms.
- Any other unmatched event that overlaps an ignore span (with tolerance) is *ignored*: it counts neither way.
- Every remaining event is a *false alarm*; every unmatched smoking interval is a *miss*, even inside an ignore span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from evaluation.labels import LabeledInterval

DEFAULT_TOLERANCE_S = 1.0
_EPS = 1e-9  # float slack so that events exactly at the tolerance boundary match despite rounding

Outcome = Literal["tp", "duplicate", "ignored", "false_alarm"]


@dataclass(frozen=True)
class PredictedEvent:
    """A smoking event as the pipeline reports it: first evidence, the moment it was confirmed (alert), last evidence."""

    video: str
    track_id: int
    start_s: float
    confirmed_s: float
    end_s: float
    score: float


@dataclass(frozen=True)
class FrameScore:
    """The largest smoking-evidence score in one analyzed frame (0 when nothing was found)."""

    video: str
    t_s: float
    score: float


@dataclass
class VideoRun:
    """What the pipeline produced for one clip; ``error`` is set when the clip could not be processed."""

    video: str
    duration_s: float
    events: list[PredictedEvent] = field(default_factory=list)
    frames: list[FrameScore] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class MatchedPair:
    """A labeled smoking interval and the event that detected it."""

    interval: LabeledInterval
    event: PredictedEvent
    overlap_s: float  # overlap of the event with the interval widened by the tolerance

    @property
    def time_to_alert_s(self) -> float:
        """Confirmation time minus labeled start; negative when the alert came before the labeled start (within tolerance)."""
        return self.event.confirmed_s - self.interval.start_s


@dataclass(frozen=True)
class EventOutcome:
    """How one predicted event was counted; ``interval`` is the matched or overlapped interval or ignore span, if any."""

    event: PredictedEvent
    outcome: Outcome
    interval: LabeledInterval | None


@dataclass
class VideoMatch:
    """The matching result for one video."""

    video: str
    tolerance_s: float
    matches: list[MatchedPair] = field(default_factory=list)
    misses: list[LabeledInterval] = field(default_factory=list)
    outcomes: list[EventOutcome] = field(default_factory=list)  # one per event, sorted by event time

    def events_with(self, outcome: Outcome) -> list[PredictedEvent]:
        return [o.event for o in self.outcomes if o.outcome == outcome]

    @property
    def false_alarms(self) -> list[PredictedEvent]:
        return self.events_with("false_alarm")

    @property
    def duplicates(self) -> list[PredictedEvent]:
        return self.events_with("duplicate")

    @property
    def ignored(self) -> list[PredictedEvent]:
        return self.events_with("ignored")


def overlap_with_tolerance(event: PredictedEvent, interval: LabeledInterval, tolerance_s: float) -> float | None:
    """Length of the overlap of the event with the widened interval; None when they do not touch at all."""
    event_start, event_end = min(event.start_s, event.end_s), max(event.start_s, event.end_s)
    overlap = min(event_end, interval.end_s + tolerance_s) - max(event_start, interval.start_s - tolerance_s)
    if overlap < -_EPS:
        return None
    return max(overlap, 0.0)


def _max_weight_assignment(weights: list[list[float]]) -> list[int]:
    """For each row, the column it is assigned to (-1 for none), maximising the total weight (Hungarian method, O(n^2 m)).

    Needs len(weights) <= len(weights[0]); all weights >= 0.
    """
    n, m = len(weights), len(weights[0])
    inf = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: row assigned to column j (1-based, 0 = free)
    for row in range(1, n + 1):
        owner[0], col = row, 0
        min_slack, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[col] = True
            current_row, delta, next_col = owner[col], inf, 0
            for j in range(1, m + 1):
                if used[j]:
                    continue
                slack = -weights[current_row - 1][j - 1] - u[current_row] - v[j]
                if slack < min_slack[j]:
                    min_slack[j], way[j] = slack, col
                if min_slack[j] < delta:
                    delta, next_col = min_slack[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    min_slack[j] -= delta
            col = next_col
            if owner[col] == 0:
                break
        while col:
            previous = way[col]
            owner[col] = owner[previous]
            col = previous
    assignment = [-1] * n
    for j in range(1, m + 1):
        if owner[j]:
            assignment[owner[j] - 1] = j - 1
    return assignment


def _event_order(event: PredictedEvent) -> tuple[float, float, float, int, float]:
    return (event.start_s, event.end_s, event.confirmed_s, event.track_id, -event.score)


def _interval_order(interval: LabeledInterval) -> tuple[float, float, int, int]:
    return (interval.start_s, interval.end_s, interval.person, interval.line)


def match_events(
    video: str,
    labels: Sequence[LabeledInterval],
    events: Sequence[PredictedEvent],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> VideoMatch:
    """Match the events of one video to its labeled intervals (smoking and ignore rows mixed) by the rules above."""
    smoking = sorted((i for i in labels if i.kind == "smoking"), key=_interval_order)
    ignores = sorted((i for i in labels if i.kind == "ignore"), key=_interval_order)
    ordered_events = sorted(events, key=_event_order)
    overlaps = [[overlap_with_tolerance(e, i, tolerance_s) for e in ordered_events] for i in smoking]

    result = VideoMatch(video, tolerance_s)
    matched_event_of: dict[int, int] = {}
    candidate_events = sorted({j for row in overlaps for j, o in enumerate(row) if o is not None})
    if smoking and candidate_events:
        # Any one extra pair must outweigh every possible gain in overlap, so the matching has the most pairs first.
        pair_bonus = 1.0 + sum(o for row in overlaps for o in row if o is not None)
        weights = [[pair_bonus + o if (o := row[j]) is not None else 0.0 for j in candidate_events] for row in overlaps]
        weights = [w + [0.0] * max(0, len(smoking) - len(candidate_events)) for w in weights]
        for i, column in enumerate(_max_weight_assignment(weights)):
            if 0 <= column < len(candidate_events) and overlaps[i][candidate_events[column]] is not None:
                matched_event_of[i] = candidate_events[column]

    matched_interval_of = {j: i for i, j in matched_event_of.items()}
    for i, interval in enumerate(smoking):
        if i in matched_event_of:
            j = matched_event_of[i]
            result.matches.append(MatchedPair(interval, ordered_events[j], overlaps[i][j] or 0.0))
        else:
            result.misses.append(interval)
    for j, event in enumerate(ordered_events):
        if j in matched_interval_of:
            result.outcomes.append(EventOutcome(event, "tp", smoking[matched_interval_of[j]]))
            continue
        touched = [(o, i) for i in range(len(smoking)) if (o := overlaps[i][j]) is not None]
        if touched:
            best = max(touched, key=lambda t: (t[0], -t[1]))[1]
            result.outcomes.append(EventOutcome(event, "duplicate", smoking[best]))
            continue
        span = next((s for s in ignores if overlap_with_tolerance(event, s, tolerance_s) is not None), None)
        result.outcomes.append(EventOutcome(event, "ignored" if span is not None else "false_alarm", span))
    return result
