"""Quarterly statistics (viewer and above, within the reader's scope) as JSON, CSV or XLSX."""

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from service.api.deps import ConfigDep, ScopeDep, SessionDep
from service.statistics import GROUPINGS, GroupBy, PeriodError, Report, compute, resolve_period
from service.statistics_tables import to_csv, to_xlsx

router = APIRouter(tags=["statistics"])
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

QuarterParam = Annotated[str | None, Query(description="A quarter such as 2026Q4 (in the statistics time zone); excludes start/end.")]
StartParam = Annotated[str | None, Query(description="ISO 8601 date or date-time; without an offset, local time.")]
EndParam = Annotated[str | None, Query(description="ISO 8601, exclusive. Neither quarter nor start/end: the current quarter.")]
SiteParam = Annotated[str | None, Query(max_length=200, description="Only this site.")]
CameraParam = Annotated[str | None, Query(max_length=64, description="Only this camera.")]
GroupParam = Annotated[str, Query(description="site or camera")]


def _report(session: SessionDep, config: ConfigDep, scope: ScopeDep, quarter: QuarterParam = None,
            start: StartParam = None, end: EndParam = None, site: SiteParam = None, camera: CameraParam = None,
            group_by: GroupParam = "site") -> Report:
    if group_by not in GROUPINGS:
        raise HTTPException(422, f"group_by must be one of {', '.join(GROUPINGS)}, not {group_by!r}")
    grouping: GroupBy = "site" if group_by == "site" else "camera"
    try:
        period = resolve_period(ZoneInfo(config.statistics.timezone), quarter, start, end)
    except PeriodError as error:
        raise HTTPException(422, str(error)) from None
    return compute(session, scope, config.statistics, period, grouping, site or None, camera or None)


def _filename(report: Report, suffix: str) -> str:
    period = report.period.quarter or f"{report.period.start:%Y%m%d}-{report.period.end:%Y%m%d}"
    return f"smokewatch-statistics-{period}-{report.group_by}.{suffix}"


ReportDep = Annotated[Report, Depends(_report)]


@router.get("/api/statistics")
def get_statistics(report: ReportDep) -> dict[str, object]:
    """Per site or camera: events, confirmed, dismissed, false-alarm rate, enforcement and review time (see service.statistics)."""
    return report.as_json()


@router.get("/api/statistics.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def get_statistics_csv(report: ReportDep) -> Response:
    """The same figures as CSV (UTF-8 with BOM); the last line holds the totals."""
    return Response(to_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{_filename(report, "csv")}"'})


@router.get("/api/statistics.xlsx", response_class=Response, responses={200: {"content": {XLSX_TYPE: {}}}})
def get_statistics_xlsx(report: ReportDep) -> Response:
    """The same figures as an Excel workbook; a second sheet holds the period, targets and definitions."""
    return Response(to_xlsx(report), media_type=XLSX_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{_filename(report, "xlsx")}"'})
