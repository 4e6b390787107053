from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from service.api.deps import SessionDep, StoreDep
from service.api.schemas import Health
from service.db.models import Camera
from service.evidence import StorageError

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health)
def health(session: SessionDep, store: StoreDep) -> Health:
    try:
        session.execute(text("select 1"))
        database = "ok"
    except Exception as error:  # report, do not raise: health must always answer
        database = f"error: {error}"
    try:
        store.check_writable()
        storage = "ok"
    except StorageError as error:
        storage = f"error: {error}"
    counts = {status: count for status, count in session.execute(select(Camera.status, func.count()).group_by(Camera.status))}
    return Health(status="ok" if database == storage == "ok" else "degraded", database=database, storage=storage,
                  cameras_online=counts.get("online", 0), cameras_offline=counts.get("offline", 0))


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
