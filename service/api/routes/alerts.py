"""Alert deliveries (supervisor and above, within scope): see which alerts failed, and send one again."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.alerts import DELIVERY_STATUSES, PENDING, request_retry
from service.api.deps import AuditorDep, ScopeDep, SessionDep, SupervisorUser
from service.api.schemas import AlertDeliveryPublic, Page
from service.db.models import AlertDelivery, Camera, Case
from service.scope import Scope

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


def _scoped(scope: Scope):  # type: ignore[no-untyped-def]
    return (select(AlertDelivery).join(Case, AlertDelivery.case_id == Case.id).outerjoin(Camera, Case.camera_id == Camera.id)
            .where(scope.case_clause()))


def _load(session: Session, scope: Scope, delivery_id: int) -> AlertDelivery:
    delivery = session.scalar(_scoped(scope).where(AlertDelivery.id == delivery_id))
    if delivery is None:
        raise HTTPException(404, f"no alert delivery {delivery_id}")
    return delivery


@router.get("/deliveries", response_model=Page[AlertDeliveryPublic])
def list_deliveries(session: SessionDep, supervisor: SupervisorUser, scope: ScopeDep,
                    status: Annotated[str | None, Query(description="pending, sent or failed")] = None,
                    case_id: Annotated[int | None, Query(description="Only this case's deliveries")] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100, offset: Annotated[int, Query(ge=0)] = 0) -> dict:
    """Newest first."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise HTTPException(422, f"unknown status {status!r}; use one of {', '.join(DELIVERY_STATUSES)}")
    query = _scoped(scope)
    if status is not None:
        query = query.where(AlertDelivery.status == status)
    if case_id is not None:
        query = query.where(AlertDelivery.case_id == case_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(AlertDelivery.id.desc()).limit(limit).offset(offset))
    return {"total": total, "items": list(items)}


@router.post("/deliveries/{delivery_id}/retry", response_model=AlertDeliveryPublic)
def retry_delivery(delivery_id: int, request: Request, session: SessionDep, supervisor: SupervisorUser, scope: ScopeDep,
                   auditor: AuditorDep) -> AlertDelivery:
    """Queue the alert again for a full round of attempts (409 while it is still pending)."""
    delivery = _load(session, scope, delivery_id)
    if delivery.status == PENDING:
        raise HTTPException(409, f"alert delivery {delivery_id} is still pending (attempt {delivery.attempts} made); "
                                 "it is retried on its own")
    previous = (delivery.status, delivery.attempts, delivery.last_error)
    request_retry(delivery)
    auditor.record("alert_retry_requested", "alert_delivery", delivery.id, case_id=delivery.case_id, target=delivery.target_name,
                   previous_status=previous[0], previous_attempts=previous[1], last_error=previous[2])
    session.commit()
    dispatcher = request.app.state.alerts
    if dispatcher is not None:
        dispatcher.wake()
    return delivery
