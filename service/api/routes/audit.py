"""Reading the audit trail (admin only); it is written by the changes themselves, never through the API."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from service.api.deps import AdminUser, SessionDep
from service.api.schemas import AuditEntryPublic, Page
from service.db.models import AuditEntry

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEntryPublic])
def list_audit_entries(session: SessionDep, admin: AdminUser,
                       action: Annotated[str | None, Query(max_length=40)] = None,
                       target_type: Annotated[str | None, Query(max_length=30)] = None,
                       target_id: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100, offset: Annotated[int, Query(ge=0)] = 0) -> dict:
    """Newest first."""
    query = select(AuditEntry)
    for column, value in ((AuditEntry.action, action), (AuditEntry.target_type, target_type), (AuditEntry.target_id, target_id)):
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return {"total": total, "items": list(items)}
