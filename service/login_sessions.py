"""Browser sign-in sessions, kept in the database: the cookie holds a random secret, the table its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db.models import LoginSession, User, utcnow

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often, not on every request


@dataclass(frozen=True)
class SessionSettings:
    cookie_name: str = "smokewatch_session"
    cookie_secure: bool = True  # False only for plain-http development and tests
    lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(hours=2)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def start(session: Session, user: User, settings: SessionSettings, ip: str) -> tuple[str, LoginSession]:
    """A new session for ``user``; returns the cookie secret (never stored) and the row."""
    secret, now = secrets.token_urlsafe(32), utcnow()
    login = LoginSession(id=_digest(secret), user_id=user.id, csrf_token=secrets.token_urlsafe(32), created_at=now,
                         last_seen_at=now, expires_at=now + settings.lifetime, ip=ip[:64])
    login.user = user
    session.add(login)
    return secret, login


def find(session: Session, secret: str, settings: SessionSettings, now: datetime | None = None) -> LoginSession | None:
    """The live session for a cookie secret; an expired or idle one is deleted and None returned."""
    now = now or utcnow()
    login = session.get(LoginSession, _digest(secret))
    if login is None:
        return None
    if now >= login.expires_at or now - login.last_seen_at >= settings.idle_timeout:
        session.delete(login)
        session.commit()
        return None
    return login


def touch(login: LoginSession, now: datetime | None = None) -> bool:
    """Note activity; True when the row changed and needs a commit."""
    now = now or utcnow()
    if now - login.last_seen_at < TOUCH_EVERY:
        return False
    login.last_seen_at = now
    return True


def end(session: Session, secret: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.id == _digest(secret)))


def end_all(session: Session, user_id: int, keep: str | None = None) -> None:
    """Sign the user out everywhere (password changed, account deactivated), except the session ``keep``."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    session.execute(query)


def prune(session: Session, now: datetime | None = None) -> None:
    session.execute(delete(LoginSession).where(LoginSession.expires_at <= (now or utcnow())))
