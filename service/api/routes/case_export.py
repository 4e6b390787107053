"""Exporting one case as a zip (viewer and above, within scope); every export is audited."""

import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import or_, select
from starlette.background import BackgroundTask

from service.api.deps import AuditorDep, ConfigDep, CurrentUser, ScopeDep, SessionDep, StoreDep
from service.api.routes.cases import case_detail, load_case
from service.api.schemas import AuditEntryPublic
from service.db.models import Attachment, AuditEntry, utcnow
from service.export import EvidenceProblem, case_attachments, case_events, export_name, remove_quietly, write_case_zip

router = APIRouter(prefix="/api/cases", tags=["cases"])


@router.get("/{case_id}/export", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}},
                       409: {"description": "An evidence file does not match its recorded hash"},
                       410: {"description": "An evidence file is missing"}})
def export_case(case_id: int, session: SessionDep, store: StoreDep, scope: ScopeDep, user: CurrentUser, auditor: AuditorDep,
                config: ConfigDep) -> FileResponse:
    """A zip with the evidence (each file checked against its recorded SHA-256), the case history, its audit entries and a
    printable summary (summary.html)."""
    case = load_case(session, scope, case_id)
    file_ids = [str(row.id) for event in case_events(case) for row in event.files]
    attachment_ids = [str(attachment.id) for attachment in case_attachments(case)]
    entries = session.scalars(select(AuditEntry).where(or_(
        (AuditEntry.target_type == "case") & (AuditEntry.target_id == str(case.id)),
        (AuditEntry.target_type == "evidence_file") & AuditEntry.target_id.in_(file_ids),
        (AuditEntry.target_type == "attachment") & AuditEntry.target_id.in_(attachment_ids))).order_by(AuditEntry.id))
    audit_entries = [AuditEntryPublic.model_validate(entry).model_dump(mode="json") | {"prev_hash": entry.prev_hash} for entry in entries]
    history = case_detail(case).model_dump(mode="json")
    exported_at = utcnow()
    with tempfile.NamedTemporaryFile(prefix=f"case-{case.id}-", suffix=".zip", delete=False) as out:
        path = Path(out.name)
        try:
            packed = write_case_zip(out, case, history, audit_entries, store, ZoneInfo(config.statistics.timezone),
                                    user.display_name or user.username, exported_at)
        except EvidenceProblem as problem:
            remove_quietly(path)
            row = problem.file
            if problem.missing:
                raise HTTPException(410, str(problem)) from None
            if isinstance(row, Attachment):
                auditor.record("evidence_mismatch", "attachment", row.id, case_id=case.id, path=row.path, recorded_sha256=row.sha256,
                               during="case_export")
            else:
                auditor.record("evidence_mismatch", "evidence_file", row.id, event_id=row.event_id, kind=row.kind, path=row.path,
                               recorded_sha256=row.sha256, during="case_export", case_id=case.id)
            session.commit()
            raise HTTPException(409, f"{problem} (the mismatch is in the audit trail)") from None
        except BaseException:
            remove_quietly(path)
            raise
    auditor.record("case_exported", "case", case.id, files=[{"name": p.name, "sha256": p.sha256} for p in packed])
    session.commit()
    return FileResponse(path, media_type="application/zip", filename=export_name(case, exported_at),
                        background=BackgroundTask(remove_quietly, path))
