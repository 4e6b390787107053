"""The paired comparison of two models' frame-level average precision on the same clips."""

import random

import pytest

from evaluation.metrics import paired_frame_ap, scored_frames


def clips(seed: int, separation: float, count: int = 12) -> dict[str, list[tuple[float, bool]]]:
    """Clips of 40 frames, half of them smoking; smoking frames score ``separation`` higher on average."""
    rng = random.Random(seed)
    return {f"clip{c}": [(min(1.0, max(0.01, rng.gauss(0.4 + separation * positive, 0.15))), positive)
                         for positive in [True] * 20 + [False] * 20] for c in range(count)}


def test_a_model_against_itself_differs_by_nothing() -> None:
    same = clips(0, 0.2)
    result = paired_frame_ap(same, same, resamples=200)
    assert result is not None
    assert result.difference == result.low == result.high == 0.0 and result.samples == 12 and result.unit == "clips"


def test_a_clearly_better_model_has_an_interval_above_zero_and_a_tie_holds_zero() -> None:
    weak, strong, also_weak = clips(1, 0.05), clips(2, 0.5), clips(3, 0.05)
    better = paired_frame_ap(weak, strong, resamples=300)
    assert better is not None and 0 < better.low < better.difference < better.high
    assert better.difference == pytest.approx(better.b - better.a)
    tie = paired_frame_ap(weak, also_weak, resamples=300)
    assert tie is not None and tie.low < 0 < tie.high
    assert "interval" in tie.describe() and "12 clips" in tie.describe()


def test_only_clips_in_both_count_and_no_smoking_frame_means_no_figure() -> None:
    a, b = clips(4, 0.3), clips(5, 0.3)
    b["extra"] = [(0.9, False)] * 10
    assert paired_frame_ap(a, b, resamples=50).samples == 12  # type: ignore[union-attr]
    negatives = {"c": [(0.5, False)]}
    assert paired_frame_ap(negatives, negatives) is None
    # One smoking clip among 31: a single draw of 31 clips misses it about a third of the time, and then there is no
    # interval to give.
    rare = {**{f"n{k}": [(0.5, False)] for k in range(30)}, "s": [(0.9, True)]}
    results = [paired_frame_ap(rare, rare, resamples=1, seed=seed) for seed in range(20)]
    assert None in results and any(r is not None and r.resamples == 1 for r in results)


def test_scored_frames_leave_out_ignore_spans_and_mark_smoking_ones() -> None:
    frames = [(0.0, 0.1), (1.0, 0.8), (2.0, 0.7), (3.0, 0.2)]
    assert scored_frames(frames, smoking=[(1.0, 1.5)], ignore=[(2.0, 2.5)]) == [(0.1, False), (0.8, True), (0.2, False)]
