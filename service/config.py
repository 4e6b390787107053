"""Configuration: pydantic models for the cameras file, with global defaults deep-merged into each camera.

Every model forbids unknown keys and describes every field, so ``smokewatch check-config``
can say exactly which camera and field is wrong and what is allowed.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector import AssociationSettings, DetectorSettings, TrackerSettings

LocationType = Literal["corridor", "hall", "stairwell", "elevator_lobby", "meeting_room", "office", "canteen", "other"]
Anchor = Literal["bottom_center", "center", "top_center"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem, one per line."""


def known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Zone(Strict):
    """A polygon in normalised frame coordinates (0,0 top-left; 1,1 bottom-right)."""

    name: str = Field("zone", description="Label shown in logs and evidence.")
    points: list[tuple[float, float]] = Field(description="At least three [x, y] corners, each between 0 and 1.")

    @field_validator("points")
    @classmethod
    def _polygon(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(points) < 3:
            raise ValueError(f"a zone needs at least 3 points, got {len(points)}")
        for x, y in points:
            if not (0 <= x <= 1 and 0 <= y <= 1):
                raise ValueError(f"point [{x}, {y}] is outside the frame; use fractions between 0 and 1")
        return points


class ScheduleWindow(Strict):
    """A weekly time window; an end before the start runs past midnight."""

    days: list[Weekday] = Field(list(WEEKDAYS), description="Days the window starts on: mon … sun.")
    start: time = Field(time(0, 0), description="Local start time, HH:MM.")
    end: time = Field(time(23, 59, 59), description="Local end time, HH:MM.")

    def contains(self, moment: datetime) -> bool:
        now, day = moment.time(), moment.weekday()
        if self.start <= self.end:
            return WEEKDAYS[day] in self.days and self.start <= now <= self.end
        # Overnight: the part after midnight belongs to the previous day's window.
        return (WEEKDAYS[day] in self.days and now >= self.start) or (WEEKDAYS[(day - 1) % 7] in self.days and now <= self.end)


class Schedule(Strict):
    """When the no-smoking rule is enforced; no windows means always."""

    timezone: str = Field("Asia/Shanghai", description="IANA time zone of the windows, e.g. Asia/Shanghai.")
    windows: list[ScheduleWindow] = Field(default_factory=list, description="Active windows; empty = always active.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return known_zone(name)

    def active(self, moment: datetime) -> bool:
        if not self.windows:
            return True
        local = moment.astimezone(ZoneInfo(self.timezone))
        return any(window.contains(local) for window in self.windows)


class EventSettings(Strict):
    """When per-frame evidence becomes a smoking event, and when it ends."""

    min_score: float = Field(0.3, gt=0, lt=1, description="A frame counts as evidence when a person's cigarette score is at least this.")
    window_frames: int = Field(10, ge=1, description="n: the analyzed frames looked back over.")
    min_hits: int = Field(4, ge=1, description="k: evidence frames needed among the last n.")
    min_duration_s: float = Field(2.0, ge=0, description="Evidence must span at least this long before an event is confirmed.")
    end_gap_s: float = Field(6.0, gt=0, description="An event ends after this long without evidence.")
    cooldown_s: float = Field(60.0, ge=0, description="After an event ends, the same person opens no new event for this long.")
    zone_anchor: Anchor = Field("bottom_center", description="Point of the person box tested against zones.")

    @model_validator(mode="after")
    def _k_of_n(self) -> EventSettings:
        if self.min_hits > self.window_frames:
            raise ValueError(f"min_hits ({self.min_hits}) cannot exceed window_frames ({self.window_frames})")
        return self


class EvidenceSettings(Strict):
    """What is saved for each event."""

    pre_roll_s: float = Field(5.0, ge=0, le=60, description="Clip seconds before the first evidence.")
    post_roll_s: float = Field(10.0, ge=0, le=120, description="Clip seconds after the last evidence.")
    max_clip_s: float = Field(300.0, gt=0, description="A longer event is cut into a clip of at most this length.")


class CameraConfig(Strict):
    """One camera watching a no-smoking area."""

    id: str = Field(description="Stable identifier: letters, digits, '-' and '_'.")
    name: str = Field("", description="Human name, e.g. '3F east corridor'.")
    site: str = Field("default", description="Site or unit the camera belongs to.")
    building: str = Field("", description="Building name or number.")
    floor: str = Field("", description="Floor, e.g. '3F' or 'B1'.")
    location_type: LocationType = Field("other", description="Kind of place watched.")
    source: str = Field(description="RTSP/HTTP URL, video file path, or a device index such as '0'.")
    enabled: bool = Field(True, description="Set false to keep the camera in the list but not watch it.")
    analysis_fps: float = Field(5.0, gt=0, le=30, description="Frames analyzed per second.")
    realtime: bool = Field(True, description="For file sources: play at the file's own speed, as a camera would.")
    loop: bool = Field(False, description="For file sources: start again at the end.")
    zones: list[Zone] = Field(default_factory=list, description="No-smoking zones; empty = the whole frame.")
    exempt_zones: list[Zone] = Field(default_factory=list, description="Designated smoking areas where evidence is ignored.")
    schedule: Schedule = Field(default_factory=Schedule, description="When the rule is enforced.")
    events: EventSettings = Field(default_factory=EventSettings, description="Event timing and thresholds.")
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings, description="Clip and snapshot settings.")
    open_timeout_s: float = Field(10.0, gt=0, description="Give up opening the stream after this long.")
    read_timeout_s: float = Field(5.0, gt=0, description="A stream that sends nothing this long counts as offline.")
    max_backoff_s: float = Field(30.0, gt=0, description="Longest wait between reconnection attempts.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
            raise ValueError(f"camera id {value!r} must be 1-64 letters, digits, '-' or '_'")
        return value

    @property
    def is_file(self) -> bool:
        return "://" not in self.source and not self.source.isdigit()


class StorageSettings(Strict):
    """Where cases and evidence are kept."""

    database_url: str = Field("sqlite:///smokewatch.db", description="SQLAlchemy URL: sqlite:///file.db or "
                                                                     "postgresql+psycopg://user:pass@host/db.")
    evidence_dir: Path = Field(Path("evidence"), description="Root folder of clips, snapshots and manifests.")
    min_free_mb: int = Field(500, ge=0, description="Stop writing new evidence below this much free disk, and say so.")
    max_attachment_mb: float = Field(20, gt=0, le=2048, description="Largest file inspectors may attach to a note or an "
                                                                  "enforcement action (JPEG, PNG, PDF, MP4).")


class ApiSettings(Strict):
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")


AlertTargetType = Literal["webhook", "wecom", "dingtalk"]


class AlertTarget(Strict):
    """One receiver of case-opened alerts: a plain webhook, a WeCom (企业微信) or a DingTalk (钉钉) group robot."""

    name: str = Field(description="Unique name, shown in the delivery list.")
    type: AlertTargetType = Field(description="webhook (JSON body), wecom (企业微信群机器人) or dingtalk (钉钉群机器人).")
    url: str = Field(description="The receiver's URL, e.g. the robot's webhook URL with its key or access_token.")
    secret: str = Field("", description="DingTalk signing secret (SEC...); empty when the robot does not sign.")
    sites: list[str] = Field(default_factory=list, description="Only cases at these sites; empty = every site.")
    enabled: bool = Field(True, description="Set false to keep the target but send nothing to it.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"alert url {value!r} must start with http:// or https://")
        return value


class AlertSettings(Strict):
    """Real-time alerts when a case opens; each delivery and its attempts are kept in alert_deliveries."""

    public_url: str = Field("http://127.0.0.1:8000", description="Base URL of this service as inspectors reach it; "
                                                                 "snapshot and case links in alerts start with it.")
    targets: list[AlertTarget] = Field(default_factory=list, description="Where alerts go; empty = no alerts.")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone of the times written in alert messages.")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Give up on one HTTP attempt after this long.")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts before a delivery is marked failed.")
    first_retry_s: float = Field(2.0, gt=0, description="Wait before the first retry; each later wait doubles (2, 4, 8, 16 s).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return known_zone(name)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertSettings:
        names = [target.name for target in self.targets]
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"alert target name(s) {', '.join(map(repr, doubled))} used twice; names must be unique")
        return self


class QuarterlyTargets(Strict):
    """What a unit is expected to achieve in one quarter."""

    persons_dissuaded: int = Field(0, ge=0, description="Persons dissuaded on site (劝阻人数).")
    venues_ordered_to_rectify: int = Field(0, ge=0, description="Venues ordered to rectify (责令整改场所数).")


class StatisticsSettings(Strict):
    """Quarterly reporting."""

    timezone: str = Field("Asia/Shanghai", description="IANA time zone that quarters and dates in reports follow.")
    quarterly_targets: QuarterlyTargets | None = Field(None, description="Targets for all sites together; none = no targets shown.")
    site_targets: dict[str, QuarterlyTargets] = Field(default_factory=dict, description="Targets of single sites, by site name; "
                                                                                         "used when a report covers only that site.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return known_zone(name)


class AppConfig(Strict):
    """The whole cameras file."""

    storage: StorageSettings = Field(default_factory=StorageSettings, description="Database and evidence folder.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="HTTP API.")
    detector: DetectorSettings = Field(default_factory=DetectorSettings, description="Model and detection thresholds.")
    analysis_threads: int | None = Field(
        None, ge=1, le=64, description="Frames analyzed at once, one thread each; None: one per two CPU cores. Unless "
                                       "detector.threads is set, each inference gets cores / analysis_threads threads.")
    analysis_backlog_s: float = Field(
        1.0, ge=0, le=10, description="Frames per camera that may wait for analysis, in seconds of that camera's "
                                      "analysis rate: absorbs bursts when several cameras deliver at once; older "
                                      "frames are dropped so alerts never lag more than this. 0 keeps only the newest.")
    tracker: TrackerSettings = Field(default_factory=TrackerSettings, description="Person tracking.")
    association: AssociationSettings = Field(default_factory=AssociationSettings, description="Cigarette-to-person rules.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras, each after merging 'defaults' into it.")
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Real-time alerts when a case opens.")
    statistics: StatisticsSettings = Field(default_factory=StatisticsSettings, description="Quarterly statistics and targets.")

    @model_validator(mode="after")
    def _unique_ids(self) -> AppConfig:
        seen: set[str] = set()
        for camera in self.cameras:
            if camera.id in seen:
                raise ValueError(f"camera id {camera.id!r} is used twice; ids must be unique")
            seen.add(camera.id)
        return self


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested dicts merge key by key; lists are replaced whole."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _describe(error: ValidationError, raw: dict[str, Any]) -> list[str]:
    lines = []
    for item in error.errors():
        location = list(item["loc"])
        where = ".".join(str(part) for part in location) or "(top level)"
        if len(location) >= 2 and location[0] == "cameras" and isinstance(location[1], int):
            cameras = raw.get("cameras") or []
            camera = cameras[location[1]] if location[1] < len(cameras) and isinstance(cameras[location[1]], dict) else {}
            field = ".".join(str(part) for part in location[2:]) or "(camera)"
            where = f"camera {camera.get('id', '?')!r} (cameras[{location[1]}]): {field}"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; check the spelling against cameras.example.yaml"
        elif item["type"] == "literal_error":
            message = f"{message} (got {item['input']!r})"
        lines.append(f"{where}: {message}")
    return lines


def parse_config(raw: object, origin: str = "config") -> AppConfig:
    """Validate a loaded YAML document: merge ``defaults`` into each camera, then check everything."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping with keys such as 'cameras' and 'defaults'")
    raw = dict(raw)
    defaults = raw.pop("defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{origin}: 'defaults' must be a mapping of camera fields")
    cameras = raw.get("cameras") or []
    if not isinstance(cameras, list):
        raise ConfigError(f"{origin}: 'cameras' must be a list")
    raw["cameras"] = [deep_merge(defaults, camera) if isinstance(camera, dict) else camera for camera in cameras]
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError("\n".join(f"{origin}: {line}" for line in _describe(error, raw))) from None


def load_config(path: Path) -> AppConfig:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    return parse_config(raw, str(path))


def redact_source(source: str) -> str:
    """Drop credentials from a camera or database URL before it is stored, logged or shown."""
    return re.sub(r"//[^/@]+@", "//***@", source)


def single_source_config(source: str, base: AppConfig | None = None) -> AppConfig:
    """The config ``smokewatch run --source X`` uses: one camera on the embedded defaults."""
    base = base or AppConfig()
    camera = CameraConfig(id="camera-1", name=Path(source).name if "://" not in source else "camera-1", source=source)
    return base.model_copy(update={"cameras": [camera]})
