"""Serving evidence files: only within the user's scope, only when the file still matches its recorded hash, always audited."""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from service.api.deps import AuditorDep, ScopeDep, SessionDep, StoreDep, VerifiedHashesDep
from service.db.models import Event, EvidenceFile

router = APIRouter(prefix="/api/evidence", tags=["evidence"])


@router.get("/{file_id}", response_class=FileResponse, responses={206: {"description": "Partial content (Range request)"},
                                                                   409: {"description": "The file does not match its recorded hash"},
                                                                   410: {"description": "The file is missing"}})
def get_evidence_file(file_id: int, request: Request, session: SessionDep, store: StoreDep, scope: ScopeDep,
                      hashes: VerifiedHashesDep, auditor: AuditorDep) -> FileResponse:
    """The file itself; clips support HTTP Range requests so players can seek."""
    row = session.scalar(select(EvidenceFile).where(EvidenceFile.id == file_id)
                         .options(selectinload(EvidenceFile.event).selectinload(Event.camera)))
    if row is None or not scope.covers_camera(row.event.camera):
        raise HTTPException(404, f"no evidence file {file_id}")
    path = store.root / row.path
    if not path.is_file():
        raise HTTPException(410, f"evidence file {row.path} is missing from the evidence folder")
    if not hashes.matches(path, row.sha256):
        auditor.record("evidence_mismatch", "evidence_file", row.id, event_id=row.event_id, kind=row.kind, path=row.path,
                       recorded_sha256=row.sha256)
        session.commit()
        raise HTTPException(409, f"evidence file {row.path} does not match its recorded hash; it was not served "
                                 "(the mismatch is in the audit trail)")
    auditor.record("evidence_viewed", "evidence_file", row.id, event_id=row.event_id, kind=row.kind, range=request.headers.get("range"))
    session.commit()
    return FileResponse(path, media_type=row.content_type, filename=path.name, content_disposition_type="inline")
