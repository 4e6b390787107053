from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from service.api.deps import SessionDep, StoreDep
from service.db.models import EvidenceFile

router = APIRouter(prefix="/api/evidence", tags=["evidence"])


@router.get("/{file_id}", response_class=FileResponse, responses={206: {"description": "Partial content (Range request)"}})
def get_evidence_file(file_id: int, session: SessionDep, store: StoreDep) -> FileResponse:
    """The file itself; clips support HTTP Range requests so players can seek."""
    row = session.get(EvidenceFile, file_id)
    if row is None:
        raise HTTPException(404, f"no evidence file {file_id}")
    path = store.root / row.path
    if not path.is_file():
        raise HTTPException(410, f"evidence file {row.path} is missing from the evidence folder")
    return FileResponse(path, media_type=row.content_type, filename=path.name, content_disposition_type="inline")
