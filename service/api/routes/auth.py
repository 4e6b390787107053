"""Sign-in and sign-out with a session cookie, the current user, and changing one's own password."""

import math
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response

from service import audit, login_limit, login_sessions
from service.accounts import AccountError, find_user, normalise_username, set_password
from service.api.deps import AuditorDep, AuthSettingsDep, CurrentUser, SessionDep, client_ip
from service.api.routes.users import user_public
from service.api.schemas import LoginRequest, PasswordChange, SignedIn
from service.db.models import LoginSession, utcnow
from service.passwords import hash_password, needs_rehash, verify_password

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _same_origin(request: Request) -> bool:
    """Sign-in CSRF guard: a browser posting from another site sends its Origin, which must be this host.

    Behind a reverse proxy that rewrites Host, the proxy must pass the original in X-Forwarded-Host.
    """
    origin = request.headers.get("origin")
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")} - {""}
    return origin is None or urlsplit(origin).netloc in hosts


@router.post("/login", response_model=SignedIn, responses={401: {"description": "Wrong username or password"},
                                                           429: {"description": "Too many failed sign-ins"}})
def login(body: LoginRequest, request: Request, response: Response, session: SessionDep, settings: AuthSettingsDep) -> SignedIn:
    """Sign in; sets the session cookie and returns the CSRF token to send with every state-changing request."""
    if not _same_origin(request):
        raise HTTPException(403, "sign-in from another site is refused")
    username, ip, now = normalise_username(body.username), client_ip(request), utcnow()
    wait = login_limit.blocked_for(session, settings.login_limit, username, ip, now)
    if wait is not None:
        audit.record(session, "login_blocked", username=username, target_type="user", target_id=username, details={"ip": ip})
        session.commit()
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise HTTPException(429, f"too many failed sign-ins for {username!r} from this address; try again in "
                                 f"{math.ceil(seconds / 60)} minute(s)", headers={"Retry-After": str(seconds)})
    user = find_user(session, username)
    password_ok = verify_password(user.password_hash if user else None, body.password)
    if user is None or not password_ok or not user.active:
        reason = "unknown username" if user is None else "wrong password" if not password_ok else "account deactivated"
        login_limit.record_failure(session, settings.login_limit, username, ip, now)
        audit.record(session, "login_failed", user=user, username=username, target_type="user",
                     target_id=user.id if user else username, details={"ip": ip, "reason": reason})
        session.commit()
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(body.password)
    login_limit.clear(session, username, ip)
    previous = request.cookies.get(settings.sessions.cookie_name)
    if previous:
        login_sessions.end(session, previous)  # a fresh session id at every sign-in (no fixation)
    login_sessions.prune(session, now)
    secret, login_session = login_sessions.start(session, user, settings.sessions, ip)
    audit.record(session, "login_succeeded", user=user, target_type="user", target_id=user.id, details={"ip": ip})
    session.commit()
    response.set_cookie(settings.sessions.cookie_name, secret, max_age=int(settings.sessions.lifetime.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=settings.sessions.cookie_secure)
    return SignedIn(user=user_public(user), csrf_token=login_session.csrf_token)


@router.post("/logout", status_code=204)
def logout(request: Request, user: CurrentUser, session: SessionDep, auditor: AuditorDep, settings: AuthSettingsDep) -> Response:
    if request.state.auth_via != "session":
        raise HTTPException(400, "API tokens do not sign in or out; an admin revokes them")
    login_sessions.end(session, request.cookies[settings.sessions.cookie_name])
    auditor.record("logout", "user", user.id)
    session.commit()
    response = Response(status_code=204)
    response.delete_cookie(settings.sessions.cookie_name, path="/", httponly=True, samesite="lax", secure=settings.sessions.cookie_secure)
    return response


@router.get("/me", response_model=SignedIn)
def me(request: Request, user: CurrentUser, session: SessionDep) -> SignedIn:
    """Who is signed in, with the session's CSRF token (empty for API tokens, which need none)."""
    login_session = session.get(LoginSession, getattr(request.state, "login_session_id", ""))
    return SignedIn(user=user_public(user), csrf_token=login_session.csrf_token if login_session else "")


@router.post("/password", status_code=204)
def change_password(body: PasswordChange, request: Request, user: CurrentUser, session: SessionDep, auditor: AuditorDep) -> Response:
    """Change one's own password; every other session of the user ends."""
    if not verify_password(user.password_hash, body.current_password):
        raise HTTPException(403, "the current password is wrong")
    try:
        set_password(user, body.new_password)
    except AccountError as error:
        raise HTTPException(422, str(error)) from None
    login_sessions.end_all(session, user.id, keep=getattr(request.state, "login_session_id", None))
    auditor.record("password_changed", "user", user.id)
    session.commit()
    return Response(status_code=204)
