from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.config import ConfigError, Schedule, ScheduleWindow, load_config, parse_config
from service.zones import ZoneFilter

ROOT = Path(__file__).resolve().parents[2]


def test_example_file_is_valid_and_defaults_merge_deeply():
    config = load_config(ROOT / "cameras.example.yaml")
    assert len(config.cameras) == 4
    stairwell = next(c for c in config.cameras if c.id == "b-stairwell-2")
    assert stairwell.events.min_score == 0.35  # camera override
    assert stairwell.events.min_hits == 4 and stairwell.events.end_gap_s == 6.0  # rest from defaults
    assert stairwell.building == "B" and stairwell.site == "市卫生健康委员会机关"


def test_errors_name_camera_field_and_what_is_allowed():
    raw = {"defaults": {"analysis_fps": 5}, "cameras": [
        {"id": "lobby", "source": "rtsp://x", "location_type": "garden"},
        {"id": "hall", "source": "a.mp4", "zonez": []},
        {"id": "bad id!", "source": "a.mp4"},
        {"id": "ok", "source": "a.mp4", "events": {"min_hits": 12}},
    ]}
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "cams.yaml")
    message = str(error.value)
    assert "cams.yaml: camera 'lobby' (cameras[0]): location_type:" in message and "'corridor'" in message and "garden" in message
    assert "camera 'hall' (cameras[1]): zonez: unknown field" in message
    assert "camera 'bad id!' (cameras[2]): id:" in message
    assert "min_hits (12) cannot exceed window_frames (10)" in message


def test_duplicate_ids_zone_points_and_time_zone_are_checked():
    with pytest.raises(ConfigError, match="used twice"):
        parse_config({"cameras": [{"id": "a", "source": "x"}, {"id": "a", "source": "y"}]})
    with pytest.raises(ConfigError, match="outside the frame"):
        parse_config({"cameras": [{"id": "a", "source": "x", "zones": [{"points": [[0, 0], [2, 0], [1, 1]]}]}]})
    with pytest.raises(ConfigError, match="unknown time zone"):
        parse_config({"cameras": [{"id": "a", "source": "x", "schedule": {"timezone": "Mars/Base"}}]})


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("cameras: [id: a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listed)


def test_schedule_windows_including_overnight():
    office_hours = Schedule(timezone="Asia/Shanghai", windows=[ScheduleWindow(days=["mon"], start="08:00", end="18:00")])
    assert office_hours.active(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    assert not office_hours.active(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # Monday 20:00
    night = Schedule(timezone="UTC", windows=[ScheduleWindow(days=["fri"], start="22:00", end="06:00")])
    assert night.active(datetime(2026, 11, 28, 3, 0, tzinfo=UTC))  # Saturday 03:00 belongs to Friday's window
    assert not night.active(datetime(2026, 11, 29, 3, 0, tzinfo=UTC))  # Sunday 03:00
    assert Schedule().active(datetime(2026, 1, 1, tzinfo=UTC))


def test_zone_filter_uses_anchor_and_exempt_zones():
    config = parse_config({"cameras": [{
        "id": "a", "source": "x",
        "zones": [{"points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}],
        "exempt_zones": [{"points": [[0, 0.5], [0.25, 0.5], [0.25, 1], [0, 1]]}],
    }]})
    camera = config.cameras[0]
    zones = ZoneFilter(camera.zones, camera.exempt_zones, "bottom_center")
    size = (1000, 1000)
    assert zones.counts((300, 100, 400, 450), size)  # feet at (350, 450): no-smoking zone
    assert not zones.counts((100, 600, 200, 900), size)  # feet at (150, 900): designated smoking area
    assert not zones.counts((700, 100, 800, 400), size)  # right half: outside every zone
    assert ZoneFilter(camera.zones, camera.exempt_zones, "top_center").counts((100, 100, 200, 900), size)
