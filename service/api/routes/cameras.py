"""Reading cameras and their status history (within the user's scope)."""

from fastapi import APIRouter, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from service.api.deps import ScopeDep, SessionDep
from service.api.schemas import CameraDetail, CameraPublic
from service.db.models import Camera

router = APIRouter(prefix="/api/cameras", tags=["cameras"])


@router.get("", response_model=list[CameraPublic])
def list_cameras(session: SessionDep, scope: ScopeDep) -> list[Camera]:
    return list(session.scalars(select(Camera).where(scope.camera_clause()).order_by(Camera.site, Camera.id)))


@router.get("/{camera_id}", response_model=CameraDetail)
def get_camera(camera_id: str, session: SessionDep, scope: ScopeDep) -> Camera:
    camera = session.scalar(select(Camera).where(Camera.id == camera_id).options(selectinload(Camera.status_changes)))
    if camera is None or not scope.covers_camera(camera):
        raise HTTPException(404, f"no camera {camera_id!r}")
    return camera
