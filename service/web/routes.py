"""The server-rendered web UI: sign-in, review queue, case page, cameras, statistics, complaints, alert deliveries.

Pages only read; every change goes through the JSON API from the page's scripts, with the
session's CSRF token (given to the page in a meta tag). Pages without a session redirect to
the sign-in page; cases and cameras outside the user's scope answer 404 like the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from service import login_sessions
from service.accounts import at_least
from service.alerts import DELIVERY_STATUSES
from service.api.deps import AuthSettings, AuthSettingsDep, SessionDep
from service.api.routes.alerts import _scoped as scoped_deliveries
from service.api.routes.case_actions import _officers_for
from service.api.routes.cases import case_detail, case_public, load_case
from service.config import AppConfig, LocationType
from service.db.models import AlertDelivery, Camera, Case, Event, EvidenceFile, User
from service.scope import Scope
from service.web.i18n import CATALOGS, HTML_LANG, LANGUAGE_COOKIE, language_of, script_messages, translator
from service.workflow import ACTION_KINDS, COMPLAINT_SOURCES, DISMISS_REASONS, PENDING_REVIEW, REOPENED, STATES

HERE = Path(__file__).resolve().parent
# Inspectors work in China; times on pages are Beijing time whatever the server's zone.
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")
LOCATION_TYPES: tuple[str, ...] = LocationType.__args__  # type: ignore[attr-defined]
REVIEWABLE = (PENDING_REVIEW, REOPENED)
QUEUE_LIMIT = 200
ALERTS_LIMIT = 200
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html


def local_time(value: datetime | None, with_seconds: bool = False) -> str:
    if value is None:
        return ""
    return value.astimezone(DISPLAY_ZONE).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


templates.env.filters["local"] = local_time


def mount_static(app: object) -> None:
    """Serve service/web/static at /static (called by create_app)."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page."""

    user: User
    csrf_token: str
    scope: Scope

    def can(self, role: str) -> bool:
        return at_least(self.user, role)


def signed_in(request: Request, session: Session, settings: AuthSettings) -> Viewer | None:
    secret = request.cookies.get(settings.sessions.cookie_name)
    login = login_sessions.find(session, secret, settings.sessions) if secret else None
    if login is None or not login.user.active:
        return None
    if login_sessions.touch(login):
        session.commit()
    return Viewer(login.user, login.csrf_token, Scope.of(login.user))


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only paths on this site (no //host, no scheme) may be redirected to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


def render(request: Request, name: str, viewer: Viewer | None, status_code: int = 200, **context: object) -> HTMLResponse:
    language = language_of(request)
    response = templates.TemplateResponse(request, name, {
        "t": translator(language), "lang": language, "html_lang": HTML_LANG[language], "languages": list(CATALOGS),
        "viewer": viewer, "script_messages": script_messages(language), "here": request.url.path
        + (f"?{request.url.query}" if request.url.query else ""), **context,
    }, status_code=status_code)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def not_found(request: Request, viewer: Viewer) -> HTMLResponse:
    return render(request, "not_found.html", viewer, status_code=404)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002  (the query parameter's name)
    return render(request, "login.html", None, next_url=safe_next(next))


@router.get("/lang/{language}")
def switch_language(language: str, next: str | None = None) -> RedirectResponse:  # noqa: A002
    if language not in CATALOGS:
        raise HTTPException(404, f"no language {language!r}")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, path="/", samesite="lax")
    return response


# --- queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    site: str
    camera: str
    location_type: str
    start: date | None
    end: date | None
    state: str  # a state, or "" for all

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.site:
            found.append(func.coalesce(Camera.site, Case.site) == self.site)
        if self.camera:
            found.append(Case.camera_id == self.camera)
        if self.location_type:
            found.append(Camera.location_type == self.location_type)
        if self.start:
            found.append(Case.opened_at >= datetime.combine(self.start, time(0), DISPLAY_ZONE))
        if self.end:
            found.append(Case.opened_at < datetime.combine(self.end + timedelta(days=1), time(0), DISPLAY_ZONE))
        return found

    def query_string(self, **changes: str) -> str:
        values = {"site": self.site, "camera": self.camera, "location_type": self.location_type,
                  "start": self.start.isoformat() if self.start else "", "end": self.end.isoformat() if self.end else "",
                  "state": self.state or "all"} | changes
        return urlencode({key: value for key, value in values.items() if value})


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def cameras_in_scope(session: Session, scope: Scope) -> list[Camera]:
    return list(session.scalars(select(Camera).where(scope.camera_clause()).order_by(Camera.site, Camera.id)))


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, settings: AuthSettingsDep,
               site: str = "", camera: str = "", location_type: str = "", start: str = "", end: str = "",
               state: Annotated[str, Query()] = PENDING_REVIEW) -> Response:
    viewer = signed_in(request, session, settings)
    if viewer is None:
        return to_login(request)
    filters = QueueFilters(site, camera, location_type if location_type in LOCATION_TYPES else "", _date(start), _date(end),
                           state if state in STATES else "")
    base = select(Case).outerjoin(Camera, Case.camera_id == Camera.id).where(viewer.scope.case_clause(), *filters.conditions())
    counted = session.execute(select(Case.state, func.count()).select_from(Case).outerjoin(Camera, Case.camera_id == Camera.id)
                              .where(viewer.scope.case_clause(), *filters.conditions()).group_by(Case.state))
    counts: dict[str, int] = {state: count for state, count in counted}
    query = base.where(Case.state == filters.state) if filters.state else base
    cases = session.scalars(query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(QUEUE_LIMIT)
                            .options(selectinload(Case.camera), selectinload(Case.event).selectinload(Event.files),
                                     selectinload(Case.assignee))).all()
    rows = [(case, case_public(case)) for case in cases]
    cameras = cameras_in_scope(session, viewer.scope)
    return render(request, "queue.html", viewer, rows=rows, filters=filters, counts=counts, states=STATES,
                  total=sum(counts.values()), sites=sorted({c.site for c in cameras}), cameras=cameras,
                  location_types=LOCATION_TYPES, reasons=DISMISS_REASONS, limit=QUEUE_LIMIT)


# --- one case ------------------------------------------------------------------------------------


def neighbours(session: Session, scope: Scope, case: Case) -> tuple[int | None, int | None]:
    """The previous and next reviewable cases in queue order (newest first), around ``case``."""
    reviewable = (select(Case.id).outerjoin(Camera, Case.camera_id == Camera.id)
                  .where(scope.case_clause(), Case.state.in_(REVIEWABLE), Case.id != case.id))
    newer = or_(Case.opened_at > case.opened_at, and_(Case.opened_at == case.opened_at, Case.id > case.id))
    previous = session.scalar(reviewable.where(newer).order_by(Case.opened_at.asc(), Case.id.asc()).limit(1))
    following = session.scalar(reviewable.where(~newer).order_by(Case.opened_at.desc(), Case.id.desc()).limit(1))
    return previous, following


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: int, request: Request, session: SessionDep, settings: AuthSettingsDep) -> Response:
    viewer = signed_in(request, session, settings)
    if viewer is None:
        return to_login(request)
    try:
        case = load_case(session, viewer.scope, case_id)
    except HTTPException:
        return not_found(request, viewer)
    detail = case_detail(case)
    event = case.event or case.linked_event
    files = {f.kind: f"/api/evidence/{f.id}" for f in event.files} if event else {}
    previous, following = neighbours(session, viewer.scope, case)
    officers = _officers_for(session, case) if viewer.can("supervisor") else []
    deliveries = (list(session.scalars(select(AlertDelivery).where(AlertDelivery.case_id == case.id).order_by(AlertDelivery.id)))
                  if viewer.can("supervisor") else [])
    config: AppConfig = request.app.state.config
    return render(request, "case.html", viewer, case=detail, event=event, files=files, camera=case.camera,
                  previous_id=previous, next_id=following, officers=officers, reasons=DISMISS_REASONS, action_kinds=ACTION_KINDS,
                  deliveries=deliveries, max_attachment_mb=f"{config.storage.max_attachment_mb:g}",
                  can_review=viewer.can("inspector") and bool({"confirm", "dismiss"} & set(detail.allowed_steps)))


# --- cameras -------------------------------------------------------------------------------------


def latest_snapshots(session: Session, cameras: list[Camera]) -> dict[str, str]:
    """camera id -> URL of its newest snapshot (annotated when there is one)."""
    found: dict[str, str] = {}
    for camera in cameras:
        row = session.scalar(select(EvidenceFile).join(Event).where(Event.camera_id == camera.id,
                                                                    EvidenceFile.kind.in_(("snapshot_annotated", "snapshot")))
                             .order_by(Event.started_at.desc(), EvidenceFile.kind.desc()).limit(1))
        if row is not None:
            found[camera.id] = f"/api/evidence/{row.id}"
    return found


@router.get("/cameras", response_class=HTMLResponse)
def cameras_page(request: Request, session: SessionDep, settings: AuthSettingsDep) -> Response:
    viewer = signed_in(request, session, settings)
    if viewer is None:
        return to_login(request)
    cameras = cameras_in_scope(session, viewer.scope)
    return render(request, "cameras.html", viewer, cameras=cameras, snapshots=latest_snapshots(session, cameras))


# --- statistics ----------------------------------------------------------------------------------


def quarter_of(day: date) -> str:
    """The quarter holding ``day``, as the statistics API names it: "2026Q4"."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(request: Request, session: SessionDep, settings: AuthSettingsDep) -> Response:
    viewer = signed_in(request, session, settings)
    if viewer is None:
        return to_login(request)
    quarter = quarter_of(datetime.now(DISPLAY_ZONE).date())
    cameras = cameras_in_scope(session, viewer.scope)
    return render(request, "statistics.html", viewer, quarter=quarter, cameras=cameras,
                  sites=sorted({c.site for c in cameras}))


# --- alert deliveries ----------------------------------------------------------------------------


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep, settings: AuthSettingsDep, status: str = "") -> Response:
    """Alert deliveries in the supervisor's scope, newest first: failures stand out and can be sent again."""
    viewer = signed_in(request, session, settings)
    if viewer is None:
        return to_login(request)
    if not viewer.can("supervisor"):
        return not_found(request, viewer)
    chosen = status if status in DELIVERY_STATUSES else ""
    scoped = scoped_deliveries(viewer.scope)
    listed = scoped.subquery()
    counted = session.execute(select(listed.c.status, func.count()).group_by(listed.c.status))
    counts: dict[str, int] = {row_status: count for row_status, count in counted}
    query = scoped.where(AlertDelivery.status == chosen) if chosen else scoped
    deliveries = session.scalars(query.order_by(AlertDelivery.id.desc()).limit(ALERTS_LIMIT)).all()
    return render(request, "alerts.html", viewer, deliveries=deliveries, statuses=DELIVERY_STATUSES, status=chosen, counts=counts,
                  limit=ALERTS_LIMIT)


# --- complaints ----------------------------------------------------------------------------------


@router.get("/complaints/new", response_class=HTMLResponse)
def complaint_page(request: Request, session: SessionDep, settings: AuthSettingsDep) -> Response:
    viewer = signed_in(request, session, settings)
    if viewer is None:
        return to_login(request)
    if not viewer.can("inspector"):
        return not_found(request, viewer)
    cameras = cameras_in_scope(session, viewer.scope)
    sites = sorted({c.site for c in cameras} | set(viewer.scope.sites))
    return render(request, "complaint.html", viewer, cameras=cameras, sites=sites, sources=COMPLAINT_SOURCES,
                  now=datetime.now(DISPLAY_ZONE).strftime("%Y-%m-%dT%H:%M"))
