"""Sign-in rate limit: too many failures for one username from one address blocks it for a while.

Failures are kept in the ``login_failures`` table, not in memory, so the limit holds across API
workers and restarts. Two attempts racing each other may both be counted as the fifth; that is
the only slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db.models import LoginFailure


@dataclass(frozen=True)
class LoginLimit:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


def blocked_for(session: Session, limit: LoginLimit, username: str, ip: str, now: datetime) -> timedelta | None:
    """How long sign-in stays blocked for this username and address, or None when it is not."""
    recent = list(session.scalars(select(LoginFailure.at).where(LoginFailure.username == username, LoginFailure.ip == ip,
                                                                LoginFailure.at > now - limit.window).order_by(LoginFailure.at)))
    if len(recent) < limit.max_failures:
        return None
    # Blocked until enough of the failures have aged out of the window.
    return recent[len(recent) - limit.max_failures] + limit.window - now


def record_failure(session: Session, limit: LoginLimit, username: str, ip: str, now: datetime) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - limit.window))
    session.add(LoginFailure(username=username[:64], ip=ip[:64], at=now))


def clear(session: Session, username: str, ip: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.ip == ip))
