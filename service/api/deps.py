"""Dependencies shared by the routes: database session, evidence store, the signed-in user, role checks, scope, auditing.

A request is authenticated either by an API token (``Authorization: Bearer swt_...``, no CSRF
token needed: browsers never send it on their own) or by the session cookie, in which case
every state-changing request must also carry the session's CSRF token, in the
``X-CSRF-Token`` header or a ``csrf_token`` form field.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from service import api_tokens, login_sessions
from service.accounts import ROLES, at_least
from service.audit import Auditor
from service.config import AppConfig
from service.db.models import User
from service.db.session import Database
from service.evidence import EvidenceStore
from service.evidence_integrity import VerifiedHashes
from service.login_limit import LoginLimit
from service.login_sessions import SessionSettings
from service.scope import Scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class AuthSettings:
    sessions: SessionSettings = field(default_factory=SessionSettings)
    login_limit: LoginLimit = field(default_factory=LoginLimit)


def get_session(request: Request) -> Iterator[Session]:
    database: Database = request.app.state.database
    with database.sessions() as session:
        yield session


def get_store(request: Request) -> EvidenceStore:
    store: EvidenceStore = request.app.state.store
    return store


def get_auth_settings(request: Request) -> AuthSettings:
    settings: AuthSettings = request.app.state.auth
    return settings


def get_verified_hashes(request: Request) -> VerifiedHashes:
    hashes: VerifiedHashes = request.app.state.verified_hashes
    return hashes


def get_config(request: Request) -> AppConfig:
    config: AppConfig = request.app.state.config
    return config


SessionDep = Annotated[Session, Depends(get_session)]
ConfigDep = Annotated[AppConfig, Depends(get_config)]
StoreDep = Annotated[EvidenceStore, Depends(get_store)]
AuthSettingsDep = Annotated[AuthSettings, Depends(get_auth_settings)]
VerifiedHashesDep = Annotated[VerifiedHashes, Depends(get_verified_hashes)]


def client_ip(request: Request) -> str:
    # Behind a reverse proxy this is the proxy's address; run uvicorn with --proxy-headers there.
    return request.client.host if request.client else ""


async def _form_csrf_token(request: Request) -> str | None:
    """The ``csrf_token`` field of a form post (HTML forms cannot set headers)."""
    if request.method in SAFE_METHODS or not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return None
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def current_user(request: Request, session: SessionDep, settings: AuthSettingsDep,
                 form_token: Annotated[str | None, Depends(_form_csrf_token)]) -> User:
    """The signed-in user (401 without a valid session or token; 403 on a state change without the CSRF token)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        token = api_tokens.find(session, credentials.strip()) if scheme.lower() == "bearer" and credentials.strip() else None
        if token is None or not token.user.active:
            raise _unauthorized("invalid, expired or revoked API token")
        request.state.auth_via = f"token:{token.id}"
        if api_tokens.touch(token):
            session.commit()
        return token.user
    secret = request.cookies.get(settings.sessions.cookie_name)
    if not secret:
        raise _unauthorized("sign in first (POST /api/auth/login) or send an API token")
    login = login_sessions.find(session, secret, settings.sessions)
    if login is None or not login.user.active:
        raise _unauthorized("your session has expired or was ended; sign in again")
    if request.method not in SAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER) or form_token or ""
        if not hmac.compare_digest(presented.encode(), login.csrf_token.encode()):
            raise HTTPException(403, f"missing or wrong CSRF token: send the token from sign-in in the {CSRF_HEADER} header "
                                     f"(or a {CSRF_FIELD} form field)")
    request.state.auth_via = "session"
    request.state.login_session_id = login.id
    if login_sessions.touch(login):
        session.commit()
    return login.user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(minimum: str) -> Callable[[User], User]:
    """A dependency that lets through users with ``minimum`` role or above (403 otherwise)."""
    if minimum not in ROLES:
        raise ValueError(f"unknown role {minimum!r}")

    def check(user: CurrentUser) -> User:
        if not at_least(user, minimum):
            raise HTTPException(403, f"this needs the {minimum} role or above; you are {user.role}")
        return user

    return check


InspectorUser = Annotated[User, Depends(require_role("inspector"))]
SupervisorUser = Annotated[User, Depends(require_role("supervisor"))]
AdminUser = Annotated[User, Depends(require_role("admin"))]


def user_scope(user: CurrentUser) -> Scope:
    return Scope.of(user)


ScopeDep = Annotated[Scope, Depends(user_scope)]


def get_auditor(request: Request, session: SessionDep, user: CurrentUser) -> Auditor:
    return Auditor(session, user, via=getattr(request.state, "auth_via", ""), ip=client_ip(request))


AuditorDep = Annotated[Auditor, Depends(get_auditor)]
