"""`smokewatch evaluate ...` end to end on real footage with the shipped model."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from detector import shipped_model_path
from detector.model import SHIPPED_MODEL
from evaluation.labels import LabeledInterval, LabelSet
from evaluation.matching import FrameScore, PredictedEvent, VideoRun
from evaluation.metrics import evaluate
from evaluation.report import build_report, write_json
from service.cli import app

runner = CliRunner()
SHORT_SMOKING = "archiducarmel_3.mp4"  # 5.3 s, two labeled intervals
SHORT_NEGATIVE = "hn17_other_ntu-lab_drink-water.avi"  # drinking from a cup: a hard negative


def labels_for(shared_videos: Path, target: Path, names: list[str], extra_rows: str = "") -> Path:
    lines = (shared_videos / "labels.csv").read_text().splitlines()
    target.write_text("\n".join([lines[0], *[row for row in lines[1:] if row.split(",")[0] in names]]) + "\n" + extra_rows)
    return target


@pytest.mark.slow
def test_report_builds_from_real_videos(shared_videos, tmp_path):
    labels = labels_for(shared_videos, tmp_path / "labels.csv", [SHORT_SMOKING, SHORT_NEGATIVE])
    result = runner.invoke(app, ["evaluate", "videos", "--labels", str(labels), "--videos", str(shared_videos),
                                 "--out", str(tmp_path / "report"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "time to alert" in result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert list(report) == ["schema", "model", "config", "summary", "videos", "sweep", "errors"]
    assert report["schema"] == "smokewatch.evaluation/1" and SHIPPED_MODEL in report["model"]
    summary = report["summary"]
    for key in ("precision", "recall", "f1", "false_alarms_per_hour", "time_to_alert_median_s", "time_to_alert_p90_s", "frames"):
        assert key in summary
    assert summary["videos"] == 2 and summary["intervals"] == 2
    assert {v["video"] for v in report["videos"]} == {SHORT_SMOKING, SHORT_NEGATIVE}
    assert all(v["frame_scores"] for v in report["videos"])  # every analyzed frame has a score
    assert report["sweep"]["rows"] and report["sweep"]["best_f1"] is not None
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")


@pytest.mark.slow
def test_the_same_inputs_give_the_same_report(shared_videos, tmp_path):
    labels = labels_for(shared_videos, tmp_path / "labels.csv", [SHORT_SMOKING])
    outputs = []
    for run in ("a", "b"):
        result = runner.invoke(app, ["evaluate", "videos", "--labels", str(labels), "--videos", str(shared_videos),
                                     "--out", str(tmp_path / run), "--no-progress", "--no-sweep"])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads((tmp_path / run / "report.json").read_text())["videos"])
    assert outputs[0] == outputs[1]


@pytest.mark.slow
def test_bad_rows_and_broken_videos_are_reported_and_the_rest_runs(shared_videos, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(shared_videos / SHORT_NEGATIVE, videos / SHORT_NEGATIVE)
    (videos / "broken.mp4").write_bytes(b"\x00" * 5000)
    extra = "missing.mp4,1,0,2,clear,\nbroken.mp4,0,,,,no smoking\n" + f"{SHORT_NEGATIVE},1,5,2,clear,reversed\n"
    labels = labels_for(shared_videos, tmp_path / "labels.csv", [SHORT_NEGATIVE], extra)
    result = runner.invoke(app, ["evaluate", "videos", "--labels", str(labels), "--videos", str(videos),
                                 "--out", str(tmp_path / "report"), "--no-progress", "--no-sweep"])
    assert result.exit_code == 0, result.output
    assert "missing.mp4" in result.output and ":3:" in result.output  # the unknown video's row, by line
    assert "broken.mp4" in result.output and "left out" in result.output
    assert ":5:" in result.output  # the reversed interval's row
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["summary"]["videos"] == 1 and report["summary"]["videos_left_out"] == 1


def test_missing_labels_file_and_bad_model_fail_clearly(tmp_path):
    result = runner.invoke(app, ["evaluate", "videos", "--labels", str(tmp_path / "none.csv"), "--videos", str(tmp_path)])
    assert result.exit_code == 2 and "none.csv" in result.output
    labels = tmp_path / "labels.csv"
    labels.write_text("video,person,start_s,end_s,visibility,notes\n")
    result = runner.invoke(app, ["evaluate", "videos", "--labels", str(labels), "--videos", str(tmp_path),
                                 "--model", str(tmp_path / "nope.onnx")])
    assert result.exit_code == 2 and "nope.onnx" in result.output


@pytest.mark.slow
def test_compare_two_configs_side_by_side(shared_videos, tmp_path):
    labels = labels_for(shared_videos, tmp_path / "labels.csv", [SHORT_SMOKING])
    strict, lenient = tmp_path / "strict.yaml", tmp_path / "lenient.yaml"
    strict.write_text("cameras: [{id: c, source: x, events: {min_score: 0.9, min_hits: 9}}]\n")
    lenient.write_text("cameras: [{id: c, source: x, events: {min_score: 0.25, min_hits: 2, min_duration_s: 0.5}}]\n")
    result = runner.invoke(app, ["evaluate", "compare", "--labels", str(labels), "--videos", str(shared_videos),
                                 "--config-a", str(strict), "--config-b", str(lenient), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert comparison["schema"] == "smokewatch.evaluation-comparison/1"
    recall = next(m for m in comparison["metrics"] if m["name"].endswith("recall"))
    assert recall["b"] >= recall["a"]
    assert (tmp_path / "cmp" / "comparison.html").read_text().count("<tr") > 3


@pytest.mark.slow
def test_compare_measures_frame_ap_as_evaluate_videos_does(shared_videos, tmp_path):
    labels = labels_for(shared_videos, tmp_path / "labels.csv", [SHORT_SMOKING])
    result = runner.invoke(app, ["evaluate", "videos", "--labels", str(labels), "--videos", str(shared_videos),
                                 "--out", str(tmp_path / "report"), "--no-progress"])
    assert result.exit_code == 0, result.output
    frames = json.loads((tmp_path / "report" / "report.json").read_text())["summary"]["frames"]
    # The shipped model run again (side A) against the saved report of the same model (side B).
    result = runner.invoke(app, ["evaluate", "compare", "--labels", str(labels), "--videos", str(shared_videos),
                                 "--report-b", str(tmp_path / "report" / "report.json"), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    frame_ap = next(m for m in comparison["metrics"] if m["name"] == "frame average precision")
    # Scores below the shipped threshold are part of the curve in both commands.
    assert frame_ap["a"] == pytest.approx(frames["average_precision"], abs=1e-6)
    assert frame_ap["b"] == frames["average_precision"]
    assert comparison["frame_ap_difference"]["difference"] == 0
    assert comparison["b"]["label"].endswith("report.json")


def test_compare_of_saved_reports_names_what_is_wrong(tmp_path):
    not_json, other = tmp_path / "notes.txt", tmp_path / "comparison.json"
    not_json.write_text("TP 7 FP 0\n")
    other.write_text(json.dumps({"schema": "smokewatch.evaluation-comparison/1"}))
    cases = [
        (["--report-a", str(tmp_path / "gone.json"), "--report-b", str(other)], "gone.json: cannot read the report"),
        (["--report-a", str(not_json), "--report-b", str(other)], "notes.txt: not JSON"),
        (["--report-a", str(other), "--report-b", str(other)], "not an evaluation report (schema "
                                                               "'smokewatch.evaluation-comparison/1'"),
        (["--report-a", str(other), "--model-a", "x.pt"], "--report-a is a finished run"),
        (["--report-b", str(other)], "side A runs a model: give --labels and --videos, or --report-a"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["evaluate", "compare", *args, "--out", str(tmp_path / "cmp")])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "cmp").exists()


def test_compare_without_out_writes_under_runs(tmp_path, monkeypatch):
    # runs/ is git-ignored: a comparison run from the repository root leaves no untracked folder behind.
    labels = LabelSet({"smoke.mp4": [LabeledInterval("smoke.mp4", 1, 2.0, 6.0, "clear", "", "smoking")]})
    frames = [FrameScore("smoke.mp4", t / 2, 0.9 if 2 <= t / 2 <= 6 else 0.1) for t in range(20)]
    run = VideoRun("smoke.mp4", 10.0, [PredictedEvent("smoke.mp4", 1, 2.5, 3.0, 5.5, 0.9)], frames)
    report = write_json(build_report(evaluate(labels, [run])), tmp_path / "report.json")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["evaluate", "compare", "--report-a", str(report), "--report-b", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "runs" / "evaluation-compare" / "comparison.json").read_text())["metrics"]


def test_images_with_an_impossible_view_size_fail_clearly(tmp_path):
    result = runner.invoke(app, ["evaluate", "images", "--data", str(tmp_path / "set.yaml"), "--extra-size", "5000"])
    assert result.exit_code == 2 and "extra_sizes must each be 64-1920 pixels, got [5000]" in result.output


def test_bench_of_a_candidate_without_its_exports_names_what_to_run(tmp_path):
    weights = tmp_path / "candidate.pt"
    shutil.copyfile(shipped_model_path("pytorch"), weights)
    result = runner.invoke(app, ["bench", "--model", str(weights), "--cameras", "0"])
    assert result.exit_code == 2
    assert "candidate.onnx" in result.output and "candidate_openvino_model" in result.output
    assert f"detector.training.export --weights {weights} --name candidate" in result.output
