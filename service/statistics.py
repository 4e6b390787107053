"""Figures for the supervisors' quarterly reports, per site or per camera, within the reader's scope.

Definitions (the period is ``[start, end)``; quarters follow the configured time zone, Asia/Shanghai by default):

* events: cases opened in the period (camera detections and complaints alike), by ``opened_at``.
* confirmed / dismissed: of those cases, the ones whose current state is confirmed or closed / dismissed.
  Cases still pending review or reopened count in neither.
* false_alarm_rate: cases dismissed as ``not_smoking`` / (confirmed + dismissed); null when both are 0.
  Other dismiss reasons (designated smoking area, test, duplicate, other) are not detector errors.
* persons_dissuaded: sum of the person counts of ``dissuaded_on_site`` actions done (``at``) in the period;
  an action recorded without a count counts as one person.
* venues_ordered_to_rectify / penalties_referred: ``ordered_to_rectify`` / ``penalty_referred`` actions done in the period.
  Actions on cases that are now dismissed do not count (the case turned out to be no smoking after all).
* median_review_minutes: over the period's cases that were reviewed, the median of the minutes from the case
  opening to its first confirm or dismiss; null when none was reviewed.
"""

from __future__ import annotations

import re
import statistics as stats
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.config import StatisticsSettings
from service.db.models import Camera, Case, CaseTransition, EnforcementAction, utcnow
from service.scope import Scope
from service.workflow import CLOSED, CONFIRMED, DISMISSED

GroupBy = Literal["site", "camera"]
GROUPINGS: tuple[GroupBy, ...] = ("site", "camera")
FIELDS = ("events", "confirmed", "dismissed", "false_alarm_rate", "persons_dissuaded", "venues_ordered_to_rectify", "penalties_referred",
          "median_review_minutes")
NO_CAMERA_LABEL = "无摄像头（举报）"
QUARTER = re.compile(r"(\d{4})[Qq]([1-4])")


class PeriodError(ValueError):
    """A malformed quarter or date (HTTP 422); the message says what is expected."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    quarter: str | None  # e.g. "2026Q4" when the period is exactly one quarter


def quarter_period(year: int, quarter: int, zone: ZoneInfo) -> Period:
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=zone)
    end = datetime(year + 1, 1, 1, tzinfo=zone) if quarter == 4 else datetime(year, 3 * quarter + 1, 1, tzinfo=zone)
    return Period(start, end, f"{year}Q{quarter}")


def quarter_containing(moment: datetime, zone: ZoneInfo) -> Period:
    local = moment.astimezone(zone)
    return quarter_period(local.year, (local.month - 1) // 3 + 1, zone)


def parse_quarter(text: str, zone: ZoneInfo) -> Period:
    match = QUARTER.fullmatch(text.strip())
    if match is None:
        raise PeriodError(f"quarter {text!r} is not like 2026Q4 (a year, Q, and 1-4)")
    return quarter_period(int(match[1]), int(match[2]), zone)


def parse_moment(text: str, name: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date or date-time; one without an offset is local time in ``zone``."""
    text = text.strip()
    if "T" in text:
        # An unencoded "+08:00" in a query string arrives as " 08:00".
        text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{name} {text!r} is not an ISO 8601 date or date-time, e.g. 2026-10-01 or 2026-10-01T00:00:00+08:00") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def resolve_period(zone: ZoneInfo, quarter: str | None = None, start: str | None = None, end: str | None = None,
                   now: datetime | None = None) -> Period:
    """``quarter``, or ``start`` and ``end`` (end exclusive), or else the current quarter."""
    if quarter:
        if start or end:
            raise PeriodError("give either quarter or start/end, not both")
        return parse_quarter(quarter, zone)
    if not start and not end:
        return quarter_containing(now or utcnow(), zone)
    if not (start and end):
        raise PeriodError("give both start and end (end is exclusive), or a quarter such as 2026Q4")
    begin, finish = parse_moment(start, "start", zone), parse_moment(end, "end", zone)
    if finish <= begin:
        raise PeriodError(f"end {end!r} must be after start {start!r}")
    whole = quarter_containing(begin, zone)
    return Period(begin, finish, whole.quarter if (whole.start, whole.end) == (begin, finish) else None)


@dataclass
class Tally:
    """The figures of one row, or of the totals."""

    events: int = 0
    confirmed: int = 0
    dismissed: int = 0
    not_smoking: int = 0
    persons_dissuaded: int = 0
    venues_ordered_to_rectify: int = 0
    penalties_referred: int = 0
    review_minutes: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, int | float | None]:
        decided = self.confirmed + self.dismissed
        return {"events": self.events, "confirmed": self.confirmed, "dismissed": self.dismissed,
                "false_alarm_rate": round(self.not_smoking / decided, 4) if decided else None,
                "persons_dissuaded": self.persons_dissuaded, "venues_ordered_to_rectify": self.venues_ordered_to_rectify,
                "penalties_referred": self.penalties_referred,
                "median_review_minutes": round(stats.median(self.review_minutes), 2) if self.review_minutes else None}


@dataclass(frozen=True)
class Report:
    period: Period
    group_by: GroupBy
    rows: list[dict[str, object]]
    totals: dict[str, int | float | None]
    targets: dict[str, int] | None

    def as_json(self) -> dict[str, object]:
        return {"start": self.period.start.isoformat(), "end": self.period.end.isoformat(), "group_by": self.group_by,
                "rows": self.rows, "totals": self.totals, "targets": self.targets}


def _group_key(group_by: GroupBy, camera_id: str | None, site: str | None, camera_name: str | None) -> tuple[str, str]:
    """The row (key, label) a case or camera belongs to."""
    if group_by == "site":
        return site or "", site or ""
    if camera_id is None:
        return "", NO_CAMERA_LABEL
    return camera_id, camera_name or camera_id


def _targets(settings: StatisticsSettings, period: Period, site: str | None, scope: Scope) -> dict[str, int] | None:
    """Quarterly targets: the site's own when the report covers a single site that has them, else the overall ones."""
    if period.quarter is None:
        return None
    if site is None and not scope.everything and len(scope.sites) == 1 and not scope.cameras:
        site = next(iter(scope.sites))
    chosen = settings.site_targets.get(site) if site is not None else None
    chosen = chosen or settings.quarterly_targets
    return chosen.model_dump() if chosen is not None else None


def compute(session: Session, scope: Scope, settings: StatisticsSettings, period: Period, group_by: GroupBy = "site",
            site: str | None = None, camera: str | None = None) -> Report:
    case_site = func.coalesce(Camera.site, Case.site)

    def filtered(query):  # type: ignore[no-untyped-def]
        query = query.where(scope.case_clause())
        if site:
            query = query.where(case_site == site)
        if camera:
            query = query.where(Case.camera_id == camera)
        return query

    first_review = (select(CaseTransition.case_id, func.min(CaseTransition.at).label("at"))
                    .where(CaseTransition.to_state.in_((CONFIRMED, DISMISSED))).group_by(CaseTransition.case_id).subquery())
    case_rows = session.execute(filtered(
        select(Case.camera_id, case_site, Camera.name, Case.state, Case.dismiss_reason, Case.opened_at, first_review.c.at)
        .outerjoin(Camera, Case.camera_id == Camera.id).outerjoin(first_review, first_review.c.case_id == Case.id)
        .where(Case.opened_at >= period.start, Case.opened_at < period.end)))
    action_rows = session.execute(filtered(
        select(Case.camera_id, case_site, Camera.name, EnforcementAction.kind, EnforcementAction.person_count)
        .join(Case, EnforcementAction.case_id == Case.id).outerjoin(Camera, Case.camera_id == Camera.id)
        .where(EnforcementAction.at >= period.start, EnforcementAction.at < period.end, Case.state != DISMISSED)))

    labels: dict[str, str] = {}
    tallies: dict[str, Tally] = defaultdict(Tally)

    def tally_of(camera_id: str | None, row_site: str | None, name: str | None) -> Tally:
        key, label = _group_key(group_by, camera_id, row_site, name)
        labels[key] = label
        return tallies[key]

    # Every camera in scope gets a row, so a quiet site shows its zeros.
    cameras = select(Camera.id, Camera.site, Camera.name).where(scope.camera_clause())
    if site:
        cameras = cameras.where(Camera.site == site)
    if camera:
        cameras = cameras.where(Camera.id == camera)
    for camera_id, camera_site, name in session.execute(cameras):
        tally_of(camera_id, camera_site, name)

    totals = Tally()
    for camera_id, row_site, name, state, dismiss_reason, opened_at, reviewed_at in case_rows:
        for tally in (tally_of(camera_id, row_site, name), totals):
            tally.events += 1
            tally.confirmed += state in (CONFIRMED, CLOSED)
            tally.dismissed += state == DISMISSED
            tally.not_smoking += state == DISMISSED and dismiss_reason == "not_smoking"
            if reviewed_at is not None:
                tally.review_minutes.append(max(0.0, (reviewed_at - opened_at) / timedelta(minutes=1)))
    for camera_id, row_site, name, kind, person_count in action_rows:
        for tally in (tally_of(camera_id, row_site, name), totals):
            if kind == "dissuaded_on_site":
                tally.persons_dissuaded += person_count if person_count is not None else 1
            elif kind == "ordered_to_rectify":
                tally.venues_ordered_to_rectify += 1
            elif kind == "penalty_referred":
                tally.penalties_referred += 1

    rows: list[dict[str, object]] = [{"key": key, "label": labels[key], **tallies[key].figures()} for key in sorted(tallies)]
    return Report(period, group_by, rows, totals.figures(), _targets(settings, period, site, scope))
