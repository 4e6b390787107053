"""Attachments on case notes and enforcement actions: upload (inspector and above), download (viewer and above), both
within scope; downloads are checked against the recorded SHA-256 like evidence files, and both are audited."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from service.api.deps import AuditorDep, ConfigDep, InspectorUser, ScopeDep, SessionDep, StoreDep, VerifiedHashesDep
from service.api.routes.cases import load_case
from service.api.schemas import AttachmentPublic
from service.attachments import TooLarge, UnsupportedType, store_attachment
from service.db.models import Attachment, Case, CaseNote, EnforcementAction

router = APIRouter(tags=["attachments"])
UPLOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Viewers cannot attach files; or the CSRF token is missing"},
    404: {"description": "No such case (or outside your scope), or the note or action is not on this case"},
    413: {"description": "The file is over storage.max_attachment_mb"},
    415: {"description": "The file's content is not JPEG, PNG, PDF or MP4"},
}


def max_attachment_bytes(mb: float) -> int:
    return int(mb * 2**20)


@router.post("/api/cases/{case_id}/attachments", response_model=AttachmentPublic, status_code=201, responses=UPLOAD_ANSWERS)
def upload_attachment(case_id: int, file: Annotated[UploadFile, File(description="JPEG, PNG, PDF or MP4")], session: SessionDep,
                      user: InspectorUser, scope: ScopeDep, auditor: AuditorDep, store: StoreDep, config: ConfigDep,
                      note_id: Annotated[int | None, Form(description="The note it belongs to")] = None,
                      action_id: Annotated[int | None, Form(description="The enforcement action it belongs to")] = None) -> Attachment:
    """Attach one file to a note or an enforcement action of the case (give exactly one of ``note_id`` and ``action_id``).
    The type is recognised from the file's content, not its name."""
    case = load_case(session, scope, case_id)
    if (note_id is None) == (action_id is None):
        raise HTTPException(422, "give exactly one of note_id and action_id: the note or enforcement action the file belongs to")
    note = session.get(CaseNote, note_id) if note_id is not None else None
    action = session.get(EnforcementAction, action_id) if action_id is not None else None
    if note_id is not None and (note is None or note.case_id != case.id):
        raise HTTPException(404, f"case {case.id} has no note {note_id}")
    if action_id is not None and (action is None or action.case_id != case.id):
        raise HTTPException(404, f"case {case.id} has no enforcement action {action_id}")
    try:
        attachment = store_attachment(auditor, store, case, file.file, file.filename,
                                      max_attachment_bytes(config.storage.max_attachment_mb), note=note, action=action)
    except TooLarge as error:
        raise HTTPException(413, str(error)) from None
    except UnsupportedType as error:
        raise HTTPException(415, str(error)) from None
    session.refresh(attachment)
    return attachment


@router.get("/api/attachments/{attachment_id}", response_class=FileResponse,
            responses={409: {"description": "The file does not match its recorded hash"}, 410: {"description": "The file is missing"}})
def get_attachment(attachment_id: int, session: SessionDep, store: StoreDep, scope: ScopeDep, hashes: VerifiedHashesDep,
                   auditor: AuditorDep) -> FileResponse:
    """The attached file, served only while it matches the SHA-256 recorded at upload."""
    row = session.scalar(select(Attachment).where(Attachment.id == attachment_id)
                         .options(selectinload(Attachment.case).selectinload(Case.camera)))
    if row is None or not scope.covers_case(row.case):
        raise HTTPException(404, f"no attachment {attachment_id}")
    path = store.root / row.path
    if not path.is_file():
        raise HTTPException(410, f"attachment {row.path} is missing from the evidence folder")
    if not hashes.matches(path, row.sha256):
        auditor.record("evidence_mismatch", "attachment", row.id, case_id=row.case_id, path=row.path, recorded_sha256=row.sha256)
        session.commit()
        raise HTTPException(409, f"attachment {row.path} does not match its recorded hash; it was not served "
                                 "(the mismatch is in the audit trail)")
    auditor.record("attachment_viewed", "attachment", row.id, case_id=row.case_id, name=row.original_name)
    session.commit()
    return FileResponse(path, media_type=row.content_type, filename=row.original_name, content_disposition_type="inline")
