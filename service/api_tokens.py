"""API tokens for integrations: shown once when issued, kept only as SHA-256, each acting as one user."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import ApiToken, User, utcnow

PREFIX = "swt_"
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    # A plain hash is enough: the token is 256 random bits, so there is nothing to guess from the digest.
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, name: str, user: User, created_by: User, expires_at: datetime | None = None) -> tuple[str, ApiToken]:
    """A new token; returns the secret (to show once) and the row."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, prefix=token[: len(PREFIX) + 6], token_hash=_digest(token), user_id=user.id,
                   created_by_id=created_by.id, created_at=utcnow(), expires_at=expires_at)
    row.user = user
    session.add(row)
    session.flush()
    return token, row


def find(session: Session, token: str, now: datetime | None = None) -> ApiToken | None:
    """The live token row for a presented secret; None if unknown, revoked or expired."""
    now = now or utcnow()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or (row.expires_at is not None and now >= row.expires_at):
        return None
    return row


def touch(row: ApiToken, now: datetime | None = None) -> bool:
    now = now or utcnow()
    if row.last_used_at is not None and now - row.last_used_at < TOUCH_EVERY:
        return False
    row.last_used_at = now
    return True


def revoke(row: ApiToken, now: datetime | None = None) -> None:
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
