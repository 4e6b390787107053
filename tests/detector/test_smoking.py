import numpy as np
import pytest

from detector import AssociationSettings, Detections, associate

PERSON, CIGARETTE = 0, 1


def frame(persons: list[list[int]], cigarettes: list[list[int]], cig_scores: list[float] | None = None) -> Detections:
    boxes = persons + cigarettes
    scores = [0.9] * len(persons) + (cig_scores or [0.6] * len(cigarettes))
    classes = [PERSON] * len(persons) + [CIGARETTE] * len(cigarettes)
    tracks = list(range(10, 10 + len(persons))) + [-1] * len(cigarettes)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores), np.array(classes), np.array(tracks))


def test_cigarette_at_mouth_is_tied_to_that_person_with_region_mouth():
    evidence = associate(frame([[100, 100, 200, 400]], [[145, 140, 160, 150]]))
    assert len(evidence.persons) == 1 and not evidence.unattached
    found = evidence.persons[0]
    assert (found.person_index, found.track_id, found.region) == (0, 10, "mouth")
    assert found.score == pytest.approx(0.6)


def test_cigarette_in_hand_beside_the_body_is_tied_with_region_hand():
    # hand held out to the right of the box, at waist height: inside the margin, outside the box
    evidence = associate(frame([[100, 100, 200, 400]], [[205, 280, 215, 290]]))
    assert [(e.person_index, e.region) for e in evidence.persons] == [(0, "hand")]


def test_two_people_side_by_side_each_gets_their_own_cigarette():
    people = [[100, 100, 200, 400], [210, 100, 310, 400]]
    cigarettes = [[150, 140, 165, 150], [290, 260, 300, 268]]
    evidence = associate(frame(people, cigarettes, [0.7, 0.5]))
    assert sorted((e.person_index, e.region, round(e.score, 1)) for e in evidence.persons) == [(0, "mouth", 0.7), (1, "hand", 0.5)]


def test_cigarette_between_overlapping_margins_goes_to_the_box_that_contains_it():
    # centre x=205 lies inside person 1's box and only within person 0's hand margin
    people = [[100, 100, 200, 400], [203, 100, 303, 400]]
    evidence = associate(frame(people, [[200, 150, 210, 160]]))
    assert [e.person_index for e in evidence.persons] == [1]


def test_cigarette_far_from_everyone_is_reported_unattached():
    evidence = associate(frame([[100, 100, 200, 400]], [[500, 50, 510, 60]], [0.8]))
    assert evidence.persons == []
    assert evidence.unattached == [((500.0, 50.0, 510.0, 60.0), pytest.approx(0.8))]


def test_best_for_picks_the_strongest_of_several_cigarettes():
    evidence = associate(frame([[100, 100, 200, 400]], [[140, 140, 150, 150], [150, 300, 160, 310]], [0.4, 0.9]))
    best = evidence.best_for(0)
    assert best is not None and best.score == pytest.approx(0.9) and best.region == "hand"
    assert evidence.best_for(5) is None


def test_margins_are_configurable():
    detections = frame([[100, 100, 200, 400]], [[205, 280, 215, 290]])
    assert associate(detections, AssociationSettings(margin_x=0.0)).unattached
