from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from tests.detector.test_training_data import sample_images, write_split
from tests.support.images import read_image

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_check_config_prints_the_merged_result():
    result = runner.invoke(app, ["check-config", str(ROOT / "cameras.example.yaml")])
    assert result.exit_code == 0, result.output
    assert "b-stairwell-2" in result.output and "min_score: 0.35" in result.output and "OK, 4 camera(s)" in result.output


def test_check_config_reports_every_error_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults:\n  analysis_fps: 0\ncameras:\n  - id: lobby\n    source: rtsp://x\n    floor_: 3\n")
    result = runner.invoke(app, ["check-config", str(bad)])
    assert result.exit_code == 2
    assert "camera 'lobby' (cameras[0]): analysis_fps: Input should be greater than 0" in result.output
    assert "camera 'lobby' (cameras[0]): floor_: unknown field" in result.output


def test_run_needs_exactly_one_of_source_and_config(tmp_path):
    assert "exactly one of --source" in runner.invoke(app, ["run"]).output
    config = tmp_path / "c.yaml"
    config.write_text("cameras: []\n")
    both = runner.invoke(app, ["run", "--source", "a.mp4", "--config", str(config)])
    assert both.exit_code == 2 and "exactly one" in both.output
    empty = runner.invoke(app, ["run", "--config", str(config)])
    assert empty.exit_code == 2 and "no cameras configured" in empty.output


def test_run_with_a_bad_model_says_which_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"detector: {{model: {tmp_path}/missing.onnx}}\ncameras: [{{id: a, source: x.mp4}}]\n")
    result = runner.invoke(app, ["run", "--config", str(config), "--no-api"])
    assert result.exit_code == 2 and "missing.onnx" in result.output


def test_run_on_a_corrupt_video_reports_it_and_keeps_what_is_stored(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00garbage" * 500)
    database = tmp_path / "db.sqlite"
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {{database_url: 'sqlite:///{database}', evidence_dir: {tmp_path}/ev}}\n"
                      f"cameras: [{{id: a, source: {corrupt}, max_backoff_s: 1, loop: false}}]\n")
    from service.db.models import Camera
    from service.db.session import Database

    db = Database(f"sqlite:///{database}")
    with db.session() as session:
        session.add(Camera(id="kept", name="stored before"))
    import threading

    from service import cli

    # the corrupt file never connects, so the reader retries; stop the run after a few seconds
    timer = threading.Timer(4.0, lambda: cli.STOP.set())
    timer.start()
    result = runner.invoke(app, ["run", "--config", str(config), "--no-api"])
    timer.cancel()
    assert result.exit_code == 0, result.output
    with db.session() as session:
        camera = session.get(Camera, "a")
        assert camera is not None and camera.status == "offline" and "corrupt.mp4" in camera.status_reason
        assert session.get(Camera, "kept") is not None
    db.dispose()


def test_train_prepare_writes_the_held_out_sets_and_trains_nothing(shared_dir, tmp_path):
    """`smokewatch train --prepare` on a small copy of the shared layout: real photos, the real COCO model."""
    photos = [read_image(path) for path in sample_images(shared_dir, 6)]
    shared = tmp_path / "shared"
    wpb, som = shared / "datasets" / "cigarette-wpb75", shared / "datasets" / "smoking-somking"
    write_split(wpb, "train", {"w0": photos[0], "w1": photos[1]})
    write_split(wpb, "valid", {"wv": photos[2]})
    write_split(wpb, "test", {"wt": photos[3]})
    write_split(som, "train", {"s0": photos[4]})
    write_split(som, "valid", {"sv": photos[5]})
    (shared / "weights").mkdir()
    (shared / "weights" / "coco-yolov5n-v6.1.pt").symlink_to(shared_dir / "weights" / "coco-yolov5n-v6.1.pt")
    config = tmp_path / "training.yaml"
    config.write_text(f"shared_dir: {shared}\ndata_dir: {tmp_path / 'data'}\nrun_dir: {tmp_path / 'runs'}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "heldout-from-an-earlier-run.yaml").write_text("path: elsewhere\n")

    result = runner.invoke(app, ["train", "--config", str(config), "--prepare"])
    assert result.exit_code == 0, result.output
    assert "images: train 3, val 1, cigarette-wpb75-test 1, smoking-somking-valid 1" in result.output
    for name in ("data", "heldout-cigarette-wpb75-test", "heldout-smoking-somking-valid", "fit-cigarette-wpb75-train"):
        assert f"{name}.yaml" in result.output and (tmp_path / "data" / f"{name}.yaml").is_file()
    assert "heldout-from-an-earlier-run.yaml" not in result.output  # only what this preparation wrote
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_train_refuses_two_steps_at_once(tmp_path):
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "missing.yaml"), "--resume", "--prepare"])
    assert result.exit_code == 2 and "--resume and --prepare are different steps" in result.output
