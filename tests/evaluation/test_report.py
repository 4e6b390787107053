"""The JSON report's keys, the self-contained HTML page, thumbnails and the comparison."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from evaluation.labels import LabeledInterval, LabelSet
from evaluation.matching import FrameScore, PredictedEvent, VideoRun
from evaluation.metrics import evaluate, sweep
from evaluation.report import (
    COMPARISON_SCHEMA,
    SCHEMA,
    build_comparison,
    build_report,
    extract_thumbnail,
    gallery_items,
    thumbnail_key,
    write_comparison_html,
    write_html,
    write_json,
)

FAKE_JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"


def labels() -> LabelSet:
    return LabelSet({
        "smoke.mp4": [LabeledInterval("smoke.mp4", 1, 2.0, 6.0, "small", "man <left> & friend", "smoking"),
                      LabeledInterval("smoke.mp4", 1, 12.0, 14.0, "clear", "", "smoking"),
                      LabeledInterval("smoke.mp4", 0, 8.0, 9.0, "", "unclear", "ignore")],
        "corridor.mp4": [],
    })


def runs(min_score: float = 0.0) -> list[VideoRun]:
    events = {
        "smoke.mp4": [PredictedEvent("smoke.mp4", 3, 2.5, 3.0, 5.5, 0.9), PredictedEvent("smoke.mp4", 4, 8.2, 8.4, 8.8, 0.6)],
        "corridor.mp4": [PredictedEvent("corridor.mp4", 1, 4.0, 4.5, 5.0, 0.7)],
    }
    frames = {v: [FrameScore(v, t / 2, ((t * 37) % 100) / 100) for t in range(32)] for v in events}
    return [VideoRun(v, 16.0, [e for e in evs if e.score >= min_score], frames[v]) for v, evs in events.items()]


def full_report() -> dict[str, Any]:
    result = evaluate(labels(), runs())
    swept = sweep(labels(), [{"min_score": s} for s in (0.5, 0.65, 0.8)], lambda p: runs(p["min_score"]))
    return build_report(result, sweep=swept, config={"videos": Path("/data/videos"), "min_score": 0.5}, model="yolo-test v1")


def test_json_has_the_documented_keys(tmp_path: Path) -> None:
    path = write_json(full_report(), tmp_path / "out" / "report.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert list(report) == ["schema", "model", "config", "summary", "videos", "sweep", "errors"]
    assert report["schema"] == SCHEMA and report["model"] == "yolo-test v1"
    assert report["config"] == {"videos": "/data/videos", "min_score": 0.5}
    assert set(report["summary"]) == {
        "videos", "videos_with_smoking", "videos_left_out", "intervals", "events", "tp", "fp", "fn", "duplicates", "ignored",
        "duration_s", "negative_s", "precision", "recall", "f1", "false_alarms_per_hour", "time_to_alert_median_s",
        "time_to_alert_p90_s", "tolerance_s", "frames"}
    assert set(report["summary"]["frames"]) == {
        "threshold", "frames", "excluded", "tp", "fp", "fn", "tn", "precision", "recall", "average_precision", "pr_curve"}
    assert set(report["videos"][0]) == {
        "video", "evaluated", "error", "duration_s", "smoking_s", "negative_s", "intervals", "events", "tp", "fp", "fn",
        "duplicates", "ignored", "time_to_alert_s", "labels", "predictions", "misses", "frame_scores"}
    assert set(report["sweep"]) == {"max_false_alarms_per_hour", "rows", "best_f1", "best_recall_within_false_alarms", "pr_curve"}
    s = report["summary"]
    assert (s["tp"], s["fp"], s["fn"], s["ignored"], s["videos_with_smoking"]) == (1, 1, 1, 1, 1)
    smoke = next(v for v in report["videos"] if v["video"] == "smoke.mp4")
    assert [p["outcome"] for p in smoke["predictions"]] == ["tp", "ignored"]
    assert smoke["predictions"][0]["interval"] == {"person": 1, "start_s": 2.0, "end_s": 6.0, "kind": "smoking"}
    assert smoke["misses"] == [{"person": 1, "start_s": 12.0, "end_s": 14.0, "visibility": "clear", "notes": ""}]
    assert smoke["time_to_alert_s"] == [1.0]
    assert [r["params"] for r in report["sweep"]["rows"]] == [{"min_score": 0.5}, {"min_score": 0.65}, {"min_score": 0.8}]
    assert report["sweep"]["best_f1"]["index"] == 2  # 0.8 drops the corridor false alarm


def test_empty_evaluation_gives_nulls_not_nan(tmp_path: Path) -> None:
    report = build_report(evaluate(LabelSet({"e.mp4": []}), [VideoRun("e.mp4", 0.0)]))
    text = write_json(report, tmp_path / "r.json").read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded["summary"]["precision"] is None and loaded["summary"]["false_alarms_per_hour"] is None
    assert loaded["sweep"] is None
    assert "NaN" not in text
    write_html(report, tmp_path / "r.html")  # renders without data


def test_gallery_lists_every_false_alarm_and_miss() -> None:
    items = gallery_items(full_report())
    assert [(i.video, i.t_s, i.kind) for i in items] == [("corridor.mp4", 4.5, "false_alarm"), ("smoke.mp4", 13.0, "miss")]


def test_html_is_one_self_contained_file(tmp_path: Path) -> None:
    report = full_report()
    thumbnails = {thumbnail_key("corridor.mp4", 4.5): FAKE_JPEG, ("smoke.mp4", 13.0000001): FAKE_JPEG + b"2"}
    page = write_html(report, tmp_path / "report.html", thumbnails).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == 1 + 2  # the PR plot and one timeline per evaluated video
    assert page.count("<svg") == page.count("</svg>")
    assert f'src="data:image/jpeg;base64,{base64.b64encode(FAKE_JPEG).decode()}"' in page
    assert base64.b64encode(FAKE_JPEG + b"2").decode() in page
    assert "no thumbnail" not in page
    # nothing is fetched from anywhere else
    assert not re.search(r"https?://|<link|<script|@import|url\(", page)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', page))
    # label text is escaped, not injected
    assert "man &lt;left&gt; &amp; friend" in page and "<left>" not in page
    assert "best F1" in page and "yolo-test v1" in page


def test_html_marks_missing_thumbnails(tmp_path: Path) -> None:
    page = write_html(full_report(), tmp_path / "r.html", {}).read_text(encoding="utf-8")
    assert page.count("no thumbnail") == 2


def test_comparison_marks_better_and_worse(tmp_path: Path) -> None:
    report_a = build_report(evaluate(labels(), runs()), model="old")
    report_b = build_report(evaluate(labels(), runs(0.8)), model="new")
    report_a["summary"]["person_frame_recall"], report_b["summary"]["person_frame_recall"] = 0.9, 0.8
    comparison = build_comparison(report_a, report_b, "old", "new")
    assert comparison["schema"] == COMPARISON_SCHEMA
    assert list(comparison) == ["schema", "a", "b", "metrics", "frame_ap_difference", "videos", "notes"]
    by_name = {m["name"]: m for m in comparison["metrics"]}
    assert (by_name["false alarms (FP)"]["a"], by_name["false alarms (FP)"]["b"]) == (1, 0)
    assert by_name["false alarms (FP)"]["change"] == "better" and by_name["false alarms (FP)"]["delta"] == -1
    assert by_name["event recall"]["change"] == "same"
    assert by_name["event precision"]["change"] == "better"
    assert by_name["persons found in smoking frames"]["change"] == "worse"
    worse = build_comparison(report_b, report_a, "new", "old")
    assert {m["name"]: m["change"] for m in worse["metrics"]}["false alarms (FP)"] == "worse"
    assert comparison["notes"] == []
    # the two runs score the same frames alike: no difference in frame AP, on every draw
    assert comparison["frame_ap_difference"]["difference"] == comparison["frame_ap_difference"]["high"] == 0.0
    page = write_comparison_html(worse, tmp_path / "cmp.html").read_text(encoding="utf-8")
    assert 'class="worse"' in page and "false alarms (FP)" in page
    assert "Frame average precision, old minus new, clips resampled: +0.000" in page
    assert not re.search(r"https?://|<link|<script", page)


def test_comparison_notes_different_video_sets() -> None:
    report_a = build_report(evaluate(labels(), runs()))
    only_corridor = LabelSet({"corridor.mp4": []})
    report_b = build_report(evaluate(only_corridor, [r for r in runs() if r.video == "corridor.mp4"]))
    notes = build_comparison(report_a, report_b)["notes"]
    assert len(notes) == 1 and "smoke.mp4" in notes[0]


def test_extract_thumbnail_reads_the_frame_at_a_time(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    np = pytest.importorskip("numpy")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 360))
    assert writer.isOpened()
    for k in range(20):  # frame k is uniformly grey at level 10 k
        writer.write(np.full((360, 640, 3), 10 * k, np.uint8))
    writer.release()

    image = cv2.imdecode(np.frombuffer(extract_thumbnail(path, 1.2), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (180, 320)
    assert abs(float(image.mean()) - 120) < 6
    boxed = cv2.imdecode(np.frombuffer(extract_thumbnail(path, 0.5, box=(100, 100, 300, 300)), np.uint8), cv2.IMREAD_COLOR)
    assert boxed[:, :, 2].max() > 150  # red box drawn on a frame of grey level 50
    past_end = cv2.imdecode(np.frombuffer(extract_thumbnail(path, 99.0), np.uint8), cv2.IMREAD_COLOR)
    assert abs(float(past_end.mean()) - 190) < 6
    with pytest.raises(ValueError, match="cannot open"):
        extract_thumbnail(tmp_path / "absent.mp4", 1.0)
