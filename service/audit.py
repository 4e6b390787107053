"""The audit trail: an append-only table where each entry carries the SHA-256 of its own fields and of the entry before.

Entries are written in the caller's transaction, next to the change they describe, so a change
and its entry commit or roll back together. Appends lock the single row of ``audit_chain_head``
first (an UPDATE: a row lock on PostgreSQL, the database write lock on SQLite), so two
concurrent requests queue up instead of both linking to the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import AuditChainHead, AuditEntry, User, utcnow

GENESIS = "0" * 64  # prev_hash of the first entry
HEAD_ID = 1


def _canonical_details(details: Mapping[str, object] | None) -> dict[str, object]:
    """Details as they will read back from the JSON column (datetimes and the like become strings)."""
    normalised: dict[str, object] = json.loads(json.dumps(dict(details or {}), default=str, ensure_ascii=False))
    return normalised


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 over a canonical JSON of every field but the hash itself."""
    fields = {"id": entry.id, "at": entry.at.isoformat(timespec="microseconds"), "user_id": entry.user_id, "username": entry.username,
              "action": entry.action, "target_type": entry.target_type, "target_id": entry.target_id, "details": entry.details,
              "prev_hash": entry.prev_hash}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def record(session: Session, action: str, *, user: User | None = None, username: str | None = None, target_type: str = "",
           target_id: object = "", details: Mapping[str, object] | None = None) -> AuditEntry:
    """Append one entry in the session's transaction; the caller commits."""
    locked = session.execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(entries=AuditChainHead.entries + 1)
                             .execution_options(synchronize_session=False))
    if locked.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError("the audit chain head row is missing; run the database migrations")
    last_id, last_hash = session.execute(select(AuditChainHead.last_id, AuditChainHead.last_hash)
                                         .where(AuditChainHead.id == HEAD_ID)).one()
    entry = AuditEntry(id=last_id + 1, at=utcnow(), user_id=user.id if user else None,
                       username=(username if username is not None else user.username if user else "")[:64], action=action,
                       target_type=target_type, target_id=str(target_id)[:64], details=_canonical_details(details), prev_hash=last_hash)
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(last_id=entry.id, last_hash=entry.hash)
                    .execution_options(synchronize_session=False))
    return entry


@dataclass
class Auditor:
    """Records entries for one actor (a request's user, or the CLI) in one session."""

    session: Session
    user: User | None
    via: str = ""  # session | token:<id> | cli
    ip: str = ""

    def record(self, action: str, target_type: str = "", target_id: object = "", **details: object) -> AuditEntry:
        context = {key: value for key, value in (("via", self.via), ("ip", self.ip)) if value}
        return record(self.session, action, user=self.user, target_type=target_type, target_id=target_id, details={**details, **context})


Problem = Literal["content_changed", "link_broken", "entries_missing_at_end"]


@dataclass(frozen=True)
class ChainReport:
    entries: int
    broken_entry_id: int | None = None
    problem: Problem | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain from the first entry; stop at the first entry whose content or link does not check out."""
    expected_prev, previous_id, count = GENESIS, 0, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)):
        count += 1
        if entry_hash(entry) != entry.hash:
            return ChainReport(count, entry.id, "content_changed",
                               f"entry {entry.id} ({entry.action}): content changed: its fields no longer match its recorded hash")
        if entry.prev_hash != expected_prev:
            if entry.id != previous_id + 1:
                gone = f"{previous_id + 1}" if entry.id == previous_id + 2 else f"{previous_id + 1}-{entry.id - 1}"
                why = f"entry {gone} before it is missing (deleted)"
            else:
                why = f"its prev_hash is not the hash of entry {previous_id} (that entry was rewritten)"
            return ChainReport(count, entry.id, "link_broken", f"entry {entry.id} ({entry.action}): link broken: {why}")
        expected_prev, previous_id = entry.hash, entry.id
    head = session.get(AuditChainHead, HEAD_ID)
    if head is None or (head.entries, head.last_id, head.last_hash) != (count, previous_id, expected_prev):
        recorded = f"{head.entries} entries ending at entry {head.last_id}" if head else "no chain head row"
        return ChainReport(count, previous_id + 1, "entries_missing_at_end",
                           f"entry {previous_id + 1}: link broken: the chain head records {recorded}, but the table ends at "
                           f"entry {previous_id} with {count} entries (newest entries deleted)")
    return ChainReport(count)
