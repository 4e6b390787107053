import pytest

from service.config import EventSettings
from service.events import EventTracker, Observation

BOX = (100.0, 100.0, 200.0, 400.0)


def run(tracker: EventTracker, fps: float, seconds: float, score_at, start: float = 0.0, box=BOX, track=1):
    updates = []
    steps = round(seconds * fps)
    for i in range(steps):
        t = start + i / fps
        score = score_at(t)
        observations = [] if score is None else [Observation(track, box, score)]
        updates += tracker.update(t, observations)
    return updates


def kinds(updates):
    return [u.kind for u in updates if u.kind != "evidence"]


def test_steady_smoker_confirmed_once_after_min_duration_and_ends_after_gap():
    tracker = EventTracker(EventSettings(min_hits=4, window_frames=10, min_duration_s=2.0, end_gap_s=3.0))
    updates = run(tracker, 5, 20, lambda t: 0.8 if t < 10 else 0.0)
    assert kinds(updates) == ["confirmed", "ended"]
    confirmed = next(u for u in updates if u.kind == "confirmed")
    ended = next(u for u in updates if u.kind == "ended")
    assert confirmed.start_t == 0.0 and confirmed.confirmed_t == pytest.approx(2.0)
    assert ended.end_t == pytest.approx(9.8) and ended.t == pytest.approx(12.8)


def test_evidence_spanning_exactly_min_duration_is_confirmed_despite_float_timestamps():
    # frames 13..73 at 30 fps span exactly 2 s, though 73/30 - 13/30 < 2.0 in floating point
    tracker = EventTracker(EventSettings(min_hits=4, window_frames=10, min_duration_s=2.0))
    updates = run(tracker, 30, 74 / 30, lambda t: 0.8 if t >= 13 / 30 - 1e-9 else None)  # frames 0..73
    assert kinds(updates) == ["confirmed"]
    confirmed = next(u for u in updates if u.kind == "confirmed")
    assert confirmed.confirmed_t == 73 / 30


def test_person_standing_still_is_caught():
    # the same box in every frame (no motion at all) must still open an event
    tracker = EventTracker(EventSettings())
    assert "confirmed" in kinds(run(tracker, 5, 5, lambda t: 0.9))


def test_sparse_evidence_below_k_of_n_is_not_confirmed():
    tracker = EventTracker(EventSettings(min_hits=4, window_frames=10, min_duration_s=1.0))
    # one frame in four holds evidence: never 4 of the last 10
    updates = run(tracker, 4, 10, lambda t: 0.8 if round(t * 4) % 4 == 0 else 0.0)
    assert kinds(updates) == []


def test_short_burst_below_min_duration_is_not_confirmed():
    tracker = EventTracker(EventSettings(min_hits=3, window_frames=10, min_duration_s=2.0))
    assert kinds(run(tracker, 5, 10, lambda t: 0.8 if t < 1.5 else 0.0)) == []


def test_low_scores_do_not_count():
    tracker = EventTracker(EventSettings(min_score=0.5))
    assert kinds(run(tracker, 5, 10, lambda t: 0.45)) == []


def test_cooldown_stops_a_repeat_and_expires():
    settings = EventSettings(min_hits=4, window_frames=10, min_duration_s=1.0, end_gap_s=2.0, cooldown_s=10.0)
    tracker = EventTracker(settings)
    pattern = lambda t: 0.9 if t < 3 or 6 <= t < 9 or 20 <= t < 23 else 0.0  # noqa: E731
    updates = run(tracker, 5, 30, pattern)
    confirmed = [u.start_t for u in updates if u.kind == "confirmed"]
    assert confirmed == [0.0, 20.0]  # the episode at 6 s falls inside the cooldown after the first ends at ~2.8 s


def test_new_track_id_on_the_same_spot_does_not_open_a_second_event():
    tracker = EventTracker(EventSettings(min_hits=3, window_frames=6, min_duration_s=1.0, end_gap_s=5.0))
    first = run(tracker, 5, 3, lambda t: 0.9, track=1)
    second = run(tracker, 5, 3, lambda t: 0.9, start=3.0, track=2)  # id switch, same person
    assert kinds(first) == ["confirmed"] and kinds(second) == []


def test_two_people_make_two_events():
    tracker = EventTracker(EventSettings(min_hits=3, window_frames=6, min_duration_s=1.0))
    updates = []
    for i in range(20):
        t = i / 5
        updates += tracker.update(t, [Observation(1, BOX, 0.9), Observation(2, (400.0, 100.0, 500.0, 400.0), 0.8)])
    assert sorted(u.track_id for u in updates if u.kind == "confirmed") == [1, 2]


def test_finish_ends_open_events():
    tracker = EventTracker(EventSettings(min_hits=2, window_frames=4, min_duration_s=0.5))
    run(tracker, 5, 3, lambda t: 0.9)
    assert tracker.busy
    ended = tracker.finish(3.0)
    assert [u.kind for u in ended] == ["ended"] and not tracker.busy


def test_cigarette_seen_alone_then_with_its_person_is_one_event():
    # a hand-only close-up: sometimes the hand is boxed as a person, sometimes only the cigarette is seen
    tracker = EventTracker(EventSettings(min_hits=3, window_frames=6, min_duration_s=1.0, end_gap_s=5.0))
    cigarette = (140.0, 150.0, 160.0, 158.0)
    alone = run(tracker, 5, 3, lambda t: 0.9, box=cigarette, track=-1)
    with_person = run(tracker, 5, 3, lambda t: 0.9, start=3.0, box=(100.0, 100.0, 300.0, 400.0), track=4)
    assert kinds(alone) == ["confirmed"] and kinds(with_person) == []


def test_unattached_cigarettes_never_make_a_second_event_beside_a_smoker():
    tracker = EventTracker(EventSettings(min_hits=3, window_frames=6, min_duration_s=1.0))
    updates = []
    for i in range(20):  # a person's cigarette and one no person explains, far apart, in the same frames
        updates += tracker.update(i / 5, [Observation(3, BOX, 0.9), Observation(-1, (600.0, 50.0, 610.0, 56.0), 0.8)])
    assert [u.track_id for u in updates if u.kind == "confirmed"] == [3]
