"""User accounts: roles, usernames, passwords and the sites/cameras each user is scoped to."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import User, UserScope
from service.passwords import check_strength, hash_password
from service.scope import CAMERA, SITE

ROLES = ("viewer", "inspector", "supervisor", "admin")  # each may do all that the ones before it may
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


class AccountError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


class UsernameTaken(AccountError):
    pass


def at_least(user: User, role: str) -> bool:
    return ROLES.index(user.role) >= ROLES.index(role)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == normalise_username(username)))


def create_user(session: Session, username: str, password: str, role: str, *, display_name: str = "", all_sites: bool = False,
                sites: Iterable[str] = (), cameras: Iterable[str] = ()) -> User:
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        raise AccountError(f"username {username!r} must be 2-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if session.scalar(select(func.count()).select_from(User).where(User.username == name)):
        raise UsernameTaken(f"username {name!r} is taken")
    user = User(username=name, display_name=display_name, role=_role(role), active=True)
    set_password(user, password)
    set_scope(user, all_sites, sites, cameras)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    try:
        check_strength(password, user.username)
    except ValueError as error:
        raise AccountError(str(error)) from None
    user.password_hash = hash_password(password)


def set_role(user: User, role: str) -> None:
    user.role = _role(role)


def set_scope(user: User, all_sites: bool, sites: Iterable[str], cameras: Iterable[str]) -> None:
    """Replace the user's scope; checked against the role, so call after ``set_role``."""
    sites, cameras = sorted(set(sites)), sorted(set(cameras))
    if user.role == "admin" and (sites or cameras):
        raise AccountError("an admin sees every site; leave sites and cameras empty")
    if all_sites and (sites or cameras):
        raise AccountError("all_sites=true means every site; leave sites and cameras empty, or set all_sites=false")
    if user.role != "admin" and not all_sites and not sites and not cameras:
        raise AccountError("give the user's sites or cameras (their unit), or all_sites=true")
    user.all_sites = all_sites or user.role == "admin"
    wanted = [(SITE, s) for s in sites] + [(CAMERA, c) for c in cameras]
    kept = [s for s in user.scopes if (s.kind, s.value) in wanted]
    existing = {(s.kind, s.value) for s in kept}
    user.scopes = kept + [UserScope(kind=kind, value=value) for kind, value in wanted if (kind, value) not in existing]


def _role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role
