import numpy as np

from detector import Detections, PersonTracker


def persons(*boxes: tuple[float, float, float, float], cigarette: tuple[float, float, float, float] | None = None) -> Detections:
    rows = list(boxes) + ([cigarette] if cigarette else [])
    classes = [0] * len(boxes) + ([1] if cigarette else [])
    return Detections(np.array(rows, np.float32), np.full(len(rows), 0.9), np.array(classes))


def test_a_walking_person_keeps_one_id_and_cigarettes_stay_untracked():
    tracker = PersonTracker(frame_rate=5)
    ids = []
    for step in range(15):
        x = 100 + step * 8
        out = tracker.update(persons((x, 100, x + 80, 300), cigarette=(x + 30, 120, x + 40, 125)))
        ids.append(int(out.tracker_id[0]))
        assert out.tracker_id[1] == -1
    assert len(set(ids[1:])) == 1 and ids[-1] >= 1


def test_two_people_passing_keep_distinct_ids():
    tracker = PersonTracker(frame_rate=5)
    seen = []
    for step in range(12):
        a, b = 100 + step * 10, 600 - step * 10
        out = tracker.update(persons((a, 100, a + 80, 300), (b, 120, b + 80, 320)))
        seen.append(tuple(int(t) for t in out.tracker_id))
    final = seen[-1]
    assert final[0] != final[1] and -1 not in final
    assert len({s[0] for s in seen[2:]}) == 1 and len({s[1] for s in seen[2:]}) == 1


def test_a_person_lost_briefly_gets_the_same_id_back():
    tracker = PersonTracker(frame_rate=5)
    for _ in range(5):
        first = tracker.update(persons((100, 100, 180, 300)))
    tracker.update(Detections.empty())
    tracker.update(Detections.empty())
    again = tracker.update(persons((102, 100, 182, 300)))
    assert again.tracker_id[0] == first.tracker_id[0]
