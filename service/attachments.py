"""Files attached to case notes and enforcement actions: type sniffing, name sanitising and storing without leftovers.

The type comes from the file's first bytes (JPEG, PNG, PDF or MP4), never from the client's
name or Content-Type. Files go to ``<evidence root>/attachments/<case id>/<random>-<name>``:
written under a temporary name (fsynced), renamed into place once the database row is flushed,
and removed again when anything fails before the commit, so a refused or failed upload leaves
neither a file nor a row.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from service.audit import Auditor
from service.db.models import Attachment, Case, CaseNote, EnforcementAction, utcnow
from service.evidence import EvidenceStore

ATTACHMENTS_DIR = "attachments"
CHUNK = 1 << 20
SNIFF_BYTES = 32
# MP4 (ISO base media) brands; QuickTime ("qt  "), HEIF and 3GP use the same box but are not accepted.
MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"mmp4", b"MSNV"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf", "video/mp4": ".mp4"}
ALLOWED_TYPES = "JPEG, PNG, PDF or MP4"
MAX_NAME = 120


class UnsupportedType(ValueError):
    """The file's content is not one of the allowed types (HTTP 415)."""


class TooLarge(ValueError):
    """The file is over the configured size limit (HTTP 413)."""


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file prove, or None when they are not JPEG, PNG, PDF or MP4."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in MP4_BRANDS:
        return "video/mp4"
    return None


def safe_name(name: str | None, content_type: str) -> str:
    """The client's file name, reduced to its last part with letters (any script), digits, ``.-_`` and spaces; the extension
    is the one of the sniffed type."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFKC", name or ""))[-1]
    base = "".join(ch if ch.isalnum() or ch in ".-_ " else "_" for ch in base if unicodedata.category(ch)[0] != "C")
    stem = re.sub(r"[_ ]{2,}", "_", PurePosixPath(base).stem if "." in base else base).strip(" ._") or "attachment"
    extension = EXTENSIONS[content_type]
    return stem[:MAX_NAME - len(extension)] + extension


def size_limit_text(max_bytes: int) -> str:
    return f"{round(max_bytes / 2**20, 2):g} MB"


def store_attachment(auditor: Auditor, store: EvidenceStore, case: Case, upload: BinaryIO, filename: str | None, max_bytes: int,
                     note: CaseNote | None = None, action: EnforcementAction | None = None) -> Attachment:
    """Check, write and record one upload and its ``attachment_added`` audit entry, then commit.

    Raises TooLarge or UnsupportedType before anything is written; on any failure after that the
    session is rolled back and the file removed."""
    if (note is None) == (action is None):
        raise ValueError("an attachment belongs to exactly one note or one enforcement action")
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    if size > max_bytes:
        raise TooLarge(f"the file is too large ({size} bytes): attachments may be at most {size_limit_text(max_bytes)}")
    if size == 0:
        raise UnsupportedType(f"the file is empty; attach a {ALLOWED_TYPES} file")
    content_type = sniff(upload.read(SNIFF_BYTES))
    upload.seek(0)
    if content_type is None:
        raise UnsupportedType(f"the file's content is not {ALLOWED_TYPES} (checked from its first bytes, whatever its name says)")
    name = safe_name(filename, content_type)
    folder = store.root / ATTACHMENTS_DIR / str(case.id)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{secrets.token_hex(6)}-{name}"
    temporary = final.with_name(f".{final.name}.tmp")
    placed = False
    try:
        digest, written = _copy(upload, temporary)
        assert auditor.user is not None
        attachment = Attachment(case_id=case.id, note=note, action=action, original_name=name,
                                path=final.relative_to(store.root).as_posix(), content_type=content_type, size_bytes=written,
                                sha256=digest, uploaded_by=auditor.user, uploaded_at=utcnow())
        auditor.session.add(attachment)
        auditor.session.flush()
        auditor.record("attachment_added", "case", case.id, attachment_id=attachment.id, note_id=attachment.note_id,
                       action_id=attachment.action_id, name=name, content_type=content_type, size_bytes=written, sha256=digest)
        os.replace(temporary, final)
        placed = True
        auditor.session.commit()
    except BaseException:
        auditor.session.rollback()
        temporary.unlink(missing_ok=True)
        if placed:
            final.unlink(missing_ok=True)
        raise
    return attachment


def _copy(upload: BinaryIO, target: Path) -> tuple[str, int]:
    digest, written = hashlib.sha256(), 0
    with target.open("xb") as out:
        while chunk := upload.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            written += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), written
