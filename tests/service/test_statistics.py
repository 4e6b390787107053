"""Quarterly statistics: hand-built cases and actions with known figures, quarter edges in Asia/Shanghai, scope, targets, CSV and XLSX."""

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from service import cases, workflow
from service.audit import Auditor
from service.config import AppConfig, QuarterlyTargets, StatisticsSettings
from service.db.models import Event, User
from service.statistics import PeriodError, resolve_period
from tests.support.accounts import World

SHANGHAI = ZoneInfo("Asia/Shanghai")
Q4_START = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)  # 2026-10-01 00:00 in Shanghai
Q4_END = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def add_case(world: World, camera_id: str, opened_at: datetime, review: str | None = None, review_minutes: float = 0,
             actions: tuple[tuple[str, datetime, int | None], ...] = (), dismiss_reason: str = "not_smoking",
             dismiss_after_actions: bool = False) -> int:
    """A camera case opened at ``opened_at``; ``review`` is confirm or dismiss, done ``review_minutes`` after the opening."""
    with world.database.session() as session:
        event_id = f"stat-{len(world.case_ids)}"
        event = Event(id=event_id, camera_id=camera_id, track_id=1, started_at=opened_at, confirmed_at=opened_at, peak_score=0.7,
                      status="complete", evidence_dir=f"none/{event_id}", model_version="test", thresholds={})
        case = cases.open_event(session, event)
        world.case_ids[event_id] = case.id
        auditor = Auditor(session, session.get(User, world.user_ids["admin"]))
        if review == "confirm":
            workflow.confirm(auditor, case)
        elif review == "dismiss":
            workflow.dismiss(auditor, case, dismiss_reason, text="why")
        if review is not None:
            case.transitions[0].at = opened_at + timedelta(minutes=review_minutes)
        for kind, at, person_count in actions:
            workflow.record_action(auditor, case, kind, at=at, person_count=person_count)
        if dismiss_after_actions:
            workflow.close(auditor, case)
            workflow.reopen(auditor, case, "wrong person")
            workflow.dismiss(auditor, case, "other", text="a vape prop")
        return case.id


def seed(world: World) -> None:
    """On top of the world's three pending cases (lobby, hall at unit-a; stairs at unit-b; all in 2026Q4)."""
    ten_hours_in = Q4_START + timedelta(hours=10)
    add_case(world, "lobby", Q4_START, "confirm", 10,
             actions=(("dissuaded_on_site", ten_hours_in, 3), ("ordered_to_rectify", ten_hours_in, None)))
    # One second before the quarter (in Shanghai): neither the case nor its action counts.
    add_case(world, "lobby", Q4_START - timedelta(seconds=1), "confirm", 1,
             actions=(("dissuaded_on_site", Q4_START - timedelta(seconds=1), None),))
    add_case(world, "hall", Q4_END - timedelta(minutes=1), "dismiss", 20)
    add_case(world, "hall", datetime(2026, 11, 10, tzinfo=UTC), "dismiss", 30, dismiss_reason="test")
    add_case(world, "stairs", datetime(2026, 11, 10, tzinfo=UTC), "confirm", 40,
             actions=(("dissuaded_on_site", datetime(2026, 11, 10, 2, tzinfo=UTC), None),
                      ("penalty_referred", datetime(2026, 11, 11, tzinfo=UTC), None)))
    add_case(world, "lobby", Q4_END, "confirm", 1)  # 2027Q1 in Shanghai
    # Confirmed, acted on, then dismissed after all: counts as dismissed, its action does not count.
    add_case(world, "lobby", datetime(2026, 11, 5, tzinfo=UTC), "confirm", 5,
             actions=(("dissuaded_on_site", datetime(2026, 11, 5, 1, tzinfo=UTC), 5),), dismiss_after_actions=True)


UNIT_A = {"events": 6, "confirmed": 1, "dismissed": 3, "false_alarm_rate": 0.25, "persons_dissuaded": 3, "venues_ordered_to_rectify": 1,
          "penalties_referred": 0, "median_review_minutes": 15.0}
UNIT_B = {"events": 2, "confirmed": 1, "dismissed": 0, "false_alarm_rate": 0.0, "persons_dissuaded": 1, "venues_ordered_to_rectify": 0,
          "penalties_referred": 1, "median_review_minutes": 40.0}
TOTALS = {"events": 8, "confirmed": 2, "dismissed": 3, "false_alarm_rate": 0.2, "persons_dissuaded": 4, "venues_ordered_to_rectify": 1,
          "penalties_referred": 1, "median_review_minutes": 20.0}


def configure_targets(world: World) -> None:
    world.app.state.config = AppConfig(statistics=StatisticsSettings(
        quarterly_targets=QuarterlyTargets(persons_dissuaded=30, venues_ordered_to_rectify=15),
        site_targets={"unit-a": QuarterlyTargets(persons_dissuaded=10, venues_ordered_to_rectify=5)}))


def test_quarter_by_site_with_known_figures(world):
    seed(world)
    configure_targets(world)
    answer = world.client("admin").get("/api/statistics", params={"quarter": "2026Q4"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["start"], report["end"], report["group_by"]) == ("2026-10-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00", "site")
    assert report["rows"] == [{"key": "unit-a", "label": "unit-a", **UNIT_A}, {"key": "unit-b", "label": "unit-b", **UNIT_B}]
    assert report["totals"] == TOTALS
    assert report["targets"] == {"persons_dissuaded": 30, "venues_ordered_to_rectify": 15}


@SQLITE_ONLY
def test_by_camera_scope_and_targets(world):
    seed(world)
    configure_targets(world)
    admin = world.client("admin")
    by_camera = admin.get("/api/statistics", params={"quarter": "2026q4", "group_by": "camera"}).json()
    rows = {row["key"]: row for row in by_camera["rows"]}
    assert set(rows) == {"lobby", "hall", "stairs"}
    assert rows["lobby"] == {"key": "lobby", "label": "lobby", "events": 3, "confirmed": 1, "dismissed": 1, "false_alarm_rate": 0.0,
                                  "persons_dissuaded": 3, "venues_ordered_to_rectify": 1, "penalties_referred": 0,
                                  "median_review_minutes": 7.5}
    assert (rows["hall"]["events"], rows["hall"]["false_alarm_rate"], rows["hall"]["median_review_minutes"]) == (3, 0.5, 25.0)
    assert by_camera["totals"] == TOTALS

    # A unit sees only its own sites, with its own targets.
    unit_a = world.client("viewer-a").get("/api/statistics", params={"quarter": "2026Q4"}).json()
    assert [row["key"] for row in unit_a["rows"]] == ["unit-a"]
    assert unit_a["totals"] == UNIT_A
    assert unit_a["targets"] == {"persons_dissuaded": 10, "venues_ordered_to_rectify": 5}
    assert world.client("viewer-a").get("/api/statistics", params={"quarter": "2026Q4", "site": "unit-b"}).json()["totals"]["events"] == 0
    lobby_only = world.client("inspector-lobby").get("/api/statistics", params={"quarter": "2026Q4", "group_by": "camera"}).json()
    assert [row["key"] for row in lobby_only["rows"]] == ["lobby"] and lobby_only["totals"]["events"] == 3

    # Filters; a site without its own targets falls back to the overall ones; a range that is not a quarter has none.
    unit_b = admin.get("/api/statistics", params={"quarter": "2026Q4", "site": "unit-b"}).json()
    assert unit_b["totals"] == UNIT_B and unit_b["targets"] == {"persons_dissuaded": 30, "venues_ordered_to_rectify": 15}
    assert admin.get("/api/statistics", params={"quarter": "2026Q4", "camera": "hall"}).json()["totals"]["events"] == 3
    exact = admin.get("/api/statistics", params={"start": "2026-10-01", "end": "2027-01-01T00:00:00+08:00"}).json()
    assert exact["totals"] == TOTALS and exact["targets"] is not None
    november = admin.get("/api/statistics", params={"start": "2026-11-01T00:00:00+08:00", "end": "2026-12-01T00:00:00+08:00"}).json()
    assert november["targets"] is None
    assert november["totals"]["events"] == 6  # the world's three, hall (test), stairs, and the lobby case dismissed later
    assert november["totals"]["persons_dissuaded"] == 1 and november["totals"]["penalties_referred"] == 1


@SQLITE_ONLY
def test_csv_and_xlsx_parse_back_to_the_same_figures(world):
    seed(world)
    client = world.client("viewer-a")
    params = {"quarter": "2026Q4", "group_by": "camera"}
    report = client.get("/api/statistics", params=params).json()
    expected = [[row["key"], row["label"], *(row[f] for f in UNIT_A)] for row in report["rows"]]
    expected.append(["total", "合计", *(report["totals"][f] for f in UNIT_A)])

    answer = client.get("/api/statistics.csv", params=params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "2026Q4" in answer.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert lines[0] == ["key", "label", *UNIT_A]

    def typed(cells: list[str]) -> list[object]:
        return [*cells[:2], *(None if c == "" else float(c) if "." in c else int(c) for c in cells[2:])]

    assert [typed(line) for line in lines[1:]] == expected

    answer = client.get("/api/statistics.xlsx", params=params)
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content))["统计"]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == ["key", "label", *UNIT_A] and values[1:] == expected


@SQLITE_ONLY
@pytest.mark.parametrize(("params", "message"), [
    ({"quarter": "2026Q5"}, "2026Q4"), ({"quarter": "Q4-2026"}, "2026Q4"), ({"start": "yesterday", "end": "2026-12-01"}, "ISO 8601"),
    ({"start": "2026-11-01"}, "both start and end"), ({"quarter": "2026Q4", "start": "2026-10-01"}, "not both"),
    ({"start": "2026-12-01", "end": "2026-11-01"}, "after start"), ({"group_by": "floor"}, "group_by"),
])
def test_malformed_input_is_422(world, params, message):
    client = world.client("viewer-a")
    for path in ("/api/statistics", "/api/statistics.csv", "/api/statistics.xlsx"):
        answer = client.get(path, params=params)
        assert answer.status_code == 422 and message in answer.json()["detail"], (path, answer.text)


@SQLITE_ONLY
def test_needs_sign_in(world):
    assert world.client().get("/api/statistics").status_code == 401


def test_periods():
    q1 = resolve_period(SHANGHAI, quarter="2027Q1")
    assert (q1.start.astimezone(UTC), q1.end.astimezone(UTC), q1.quarter) == (Q4_END, datetime(2027, 3, 31, 16, tzinfo=UTC), "2027Q1")
    current = resolve_period(SHANGHAI, now=datetime(2026, 12, 31, 17, tzinfo=UTC))  # already 2027 in Shanghai
    assert current.quarter == "2027Q1"
    assert resolve_period(SHANGHAI, start="2026-11-01", end="2026-11-02").quarter is None
    unencoded_plus = resolve_period(SHANGHAI, start="2026-10-01T00:00:00 08:00", end="2027-01-01T00:00:00 08:00")
    assert unencoded_plus.quarter == "2026Q4"
    with pytest.raises(PeriodError):
        resolve_period(SHANGHAI, quarter="2026Q0")


@SQLITE_ONLY
def test_complaints_count_at_their_site_and_without_a_camera(world):
    with world.database.session() as session:
        auditor = Auditor(session, session.get(User, world.user_ids["admin"]))
        complaint = workflow.open_complaint(auditor, "phone", "smoke in the lift", "unit-b", None, datetime(2026, 11, 3, tzinfo=UTC))
        complaint.opened_at = datetime(2026, 11, 3, tzinfo=UTC)
        workflow.confirm(auditor, complaint)
        workflow.record_action(auditor, complaint, "ordered_to_rectify", at=datetime(2026, 11, 4, tzinfo=UTC))
    admin = world.client("admin")
    by_site = {row["key"]: row for row in admin.get("/api/statistics", params={"quarter": "2026Q4"}).json()["rows"]}
    assert (by_site["unit-b"]["events"], by_site["unit-b"]["confirmed"], by_site["unit-b"]["venues_ordered_to_rectify"]) == (2, 1, 1)
    by_camera = {row["key"]: row for row in admin.get("/api/statistics", params={"quarter": "2026Q4", "group_by": "camera"}).json()["rows"]}
    assert by_camera[""]["label"] == "无摄像头（举报）" and by_camera[""]["events"] == 1
    assert world.client("viewer-a").get("/api/statistics", params={"quarter": "2026Q4"}).json()["totals"]["events"] == 2
