from fastapi import APIRouter, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from service.api.deps import SessionDep
from service.api.schemas import CameraDetail, CameraPublic
from service.db.models import Camera

router = APIRouter(prefix="/api/cameras", tags=["cameras"])


@router.get("", response_model=list[CameraPublic])
def list_cameras(session: SessionDep) -> list[Camera]:
    return list(session.scalars(select(Camera).order_by(Camera.site, Camera.id)))


@router.get("/{camera_id}", response_model=CameraDetail)
def get_camera(camera_id: str, session: SessionDep) -> Camera:
    camera = session.scalar(select(Camera).where(Camera.id == camera_id).options(selectinload(Camera.status_changes)))
    if camera is None:
        raise HTTPException(404, f"no camera {camera_id!r}")
    return camera
