"""User accounts (admin only): list, create, change role/scope/password, deactivate."""

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from service import accounts, login_sessions
from service.api.deps import AdminUser, AuditorDep, SessionDep
from service.api.schemas import UserCreate, UserPublic, UserUpdate
from service.db.models import User
from service.scope import CAMERA, SITE

router = APIRouter(prefix="/api/users", tags=["users"])


def user_public(user: User) -> UserPublic:
    public = UserPublic.model_validate(user)
    public.sites = [s.value for s in user.scopes if s.kind == SITE]
    public.cameras = [s.value for s in user.scopes if s.kind == CAMERA]
    return public


def load_user(session: SessionDep, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    return user


@router.get("", response_model=list[UserPublic])
def list_users(session: SessionDep, admin: AdminUser) -> list[UserPublic]:
    return [user_public(u) for u in session.scalars(select(User).order_by(User.username))]


@router.get("/{user_id}", response_model=UserPublic)
def get_user(user_id: int, session: SessionDep, admin: AdminUser) -> UserPublic:
    return user_public(load_user(session, user_id))


@router.post("", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, session: SessionDep, admin: AdminUser, auditor: AuditorDep) -> UserPublic:
    try:
        user = accounts.create_user(session, body.username, body.password, body.role, display_name=body.display_name,
                                    all_sites=body.all_sites, sites=body.sites, cameras=body.cameras)
    except accounts.UsernameTaken as error:
        raise HTTPException(409, str(error)) from None
    except accounts.AccountError as error:
        raise HTTPException(422, str(error)) from None
    public = user_public(user)
    auditor.record("user_created", "user", user.id, username=user.username, role=user.role, all_sites=user.all_sites,
                   sites=public.sites, cameras=public.cameras)
    session.commit()
    return public


@router.patch("/{user_id}", response_model=UserPublic)
def update_user(user_id: int, body: UserUpdate, session: SessionDep, admin: AdminUser, auditor: AuditorDep) -> UserPublic:
    user = load_user(session, user_id)
    if user.id == admin.id and (body.active is False or (body.role is not None and body.role != "admin")):
        raise HTTPException(409, "you cannot deactivate or demote your own account; ask another admin")
    before = user_public(user)
    scope_given = body.all_sites is not None or body.sites is not None or body.cameras is not None
    if before.role == "admin" and body.role not in (None, "admin") and not scope_given:
        raise HTTPException(422, "a user who stops being admin needs a scope: give sites, cameras or all_sites")
    try:
        if body.role is not None:
            accounts.set_role(user, body.role)
        if body.role is not None or scope_given:
            admin_now = user.role == "admin"
            accounts.set_scope(user, body.all_sites if body.all_sites is not None else before.all_sites and before.role != "admin",
                               body.sites if body.sites is not None else ([] if admin_now else before.sites),
                               body.cameras if body.cameras is not None else ([] if admin_now else before.cameras))
        if body.password is not None:
            accounts.set_password(user, body.password)
    except accounts.AccountError as error:
        session.rollback()
        raise HTTPException(422, str(error)) from None
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.active is not None:
        user.active = body.active
    if body.password is not None or body.active is False:
        login_sessions.end_all(session, user.id)  # a reset password or a deactivated account signs out everywhere
    after = user_public(user)
    changed = {name: getattr(after, name) for name in ("display_name", "role", "all_sites", "sites", "cameras", "active")
               if getattr(after, name) != getattr(before, name)}
    auditor.record("user_updated", "user", user.id, username=user.username, changed=changed, password_reset=body.password is not None)
    session.commit()
    return after
