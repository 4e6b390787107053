"""From per-frame smoking evidence to events: k of n frames, minimum duration, end gap, cooldown.

Motion plays no part: a smoker who stands still is still caught.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from service.config import EventSettings

UNATTACHED_TRACK = -1  # cigarettes seen with no person box are tracked together under this id
TIME_TOLERANCE_S = 1e-6  # timestamps are frame index / fps: 73/30 - 13/30 is 1.9999999999999998, and it must count as 2 s


@dataclass(frozen=True)
class Observation:
    """One person (or the unattached-cigarette pseudo-person) in one analyzed frame."""

    track_id: int
    box: tuple[float, float, float, float]
    score: float  # smoking-evidence score; 0 when no cigarette is tied to this person


@dataclass(frozen=True)
class EventUpdate:
    kind: Literal["confirmed", "evidence", "ended"]
    event_id: str
    track_id: int
    t: float  # stream time of this update
    start_t: float  # first evidence of the episode
    confirmed_t: float
    end_t: float | None  # last evidence, set when ended
    peak_score: float
    box: tuple[float, float, float, float]


@dataclass
class _Track:
    history: deque[tuple[float, bool]]
    episode_start: float | None = None
    last_hit: float | None = None
    last_seen: float = 0.0
    peak: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    event_id: str | None = None
    confirmed_t: float = 0.0


@dataclass
class _Ended:
    box: tuple[float, float, float, float]
    until: float
    track_id: int


def _same_spot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box: a cigarette box inside a person box is the same spot."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


@dataclass
class EventTracker:
    """Turns a camera's stream of observations into smoking events.

    A person's event is confirmed when at least ``min_hits`` of their last
    ``window_frames`` analyzed frames hold evidence and the evidence spans at least
    ``min_duration_s``; it ends ``end_gap_s`` after the last evidence. A new event for
    the same person (same track, or a new track id on the same spot, as after an id
    switch, or the same cigarette seen without its person) waits ``cooldown_s``.
    """

    settings: EventSettings
    same_spot_overlap: float = 0.5  # of the smaller box; an id switch or a cigarette seen with and without its person
    _tracks: dict[int, _Track] = field(default_factory=dict)
    _cooldowns: list[_Ended] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """True while any person has evidence pending or an open event."""
        return any(track.episode_start is not None for track in self._tracks.values())

    def update(self, t: float, observations: list[Observation]) -> list[EventUpdate]:
        s = self.settings
        updates: list[EventUpdate] = []
        seen = {o.track_id: o for o in observations}
        for track_id, seen_now in seen.items():
            track = self._tracks.setdefault(track_id, _Track(history=deque(maxlen=s.window_frames)))
            track.last_seen, track.box = t, seen_now.box
        for track_id, track in list(self._tracks.items()):
            observation = seen.get(track_id)
            score = observation.score if observation is not None else 0.0
            hit = observation is not None and score >= s.min_score
            track.history.append((t, hit))
            if hit:
                if track.episode_start is None:
                    track.episode_start, track.peak = t, 0.0
                track.last_hit, track.peak = t, max(track.peak, score)
                if track.event_id is not None:
                    updates.append(self._update("evidence", track_id, track, t))
            if track.episode_start is not None and track.last_hit is not None and t - track.last_hit >= s.end_gap_s:
                if track.event_id is not None:
                    updates.append(self._update("ended", track_id, track, t, end_t=track.last_hit))
                    self._cooldowns.append(_Ended(track.box, track.last_hit + s.cooldown_s, track_id))
                track.episode_start, track.last_hit, track.event_id = None, None, None
            if track.event_id is None and hit and self._ready(track_id, track, t):
                track.event_id, track.confirmed_t = uuid.uuid4().hex, t
                updates.append(self._update("confirmed", track_id, track, t))
            if track.episode_start is None and t - track.last_seen > s.end_gap_s:
                del self._tracks[track_id]
        self._cooldowns = [c for c in self._cooldowns if c.until > t]
        return updates

    def _ready(self, track_id: int, track: _Track, t: float) -> bool:
        s = self.settings
        hits = sum(1 for _, hit in track.history if hit)
        assert track.episode_start is not None
        if hits < s.min_hits or t - track.episode_start < s.min_duration_s - TIME_TOLERANCE_S:
            return False
        # One event per person: an open or recent event on the same spot (an id switch) suppresses this one. Cigarettes
        # no person explains may belong to any smoker in view, so they never make a second event beside another.
        def same(other_id: int, other_box: tuple[float, float, float, float]) -> bool:
            return UNATTACHED_TRACK in (other_id, track_id) or _same_spot(other_box, track.box) >= self.same_spot_overlap

        if any(other is not track and other.event_id is not None and same(other_id, other.box) for other_id, other in self._tracks.items()):
            return False
        return not any(same(c.track_id, c.box) for c in self._cooldowns)

    def finish(self, t: float) -> list[EventUpdate]:
        """End every open event (the stream ended)."""
        updates = []
        for track_id, track in self._tracks.items():
            if track.event_id is not None:
                updates.append(self._update("ended", track_id, track, t, end_t=track.last_hit))
        self._tracks.clear()
        return updates

    @staticmethod
    def _update(kind: Literal["confirmed", "evidence", "ended"], track_id: int, track: _Track, t: float,
                end_t: float | None = None) -> EventUpdate:
        assert track.event_id is not None and track.episode_start is not None
        return EventUpdate(kind, track.event_id, track_id, t, track.episode_start, track.confirmed_t, end_t, track.peak, track.box)
