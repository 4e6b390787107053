"""API tokens for integrations (admin only): issue (the secret is shown once), list, revoke."""

from fastapi import APIRouter, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from service import api_tokens
from service.api.deps import AdminUser, AuditorDep, SessionDep
from service.api.schemas import TokenCreate, TokenIssued, TokenPublic
from service.db.models import ApiToken, User, utcnow

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.get("", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, admin: AdminUser) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id).options(selectinload(ApiToken.user))))


@router.post("", response_model=TokenIssued, status_code=201)
def issue_token(body: TokenCreate, session: SessionDep, admin: AdminUser, auditor: AuditorDep) -> TokenIssued:
    """A token acting as ``user_id`` (with that user's role and scope)."""
    user = session.get(User, body.user_id)
    if user is None:
        raise HTTPException(404, f"no user {body.user_id}")
    if not user.active:
        raise HTTPException(409, f"user {user.username!r} is deactivated")
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise HTTPException(422, "expires_at is in the past")
    secret, row = api_tokens.issue(session, body.name, user, admin, body.expires_at)
    auditor.record("token_created", "token", row.id, name=row.name, prefix=row.prefix, user_id=user.id, expires_at=row.expires_at)
    session.commit()
    return TokenIssued.model_validate(TokenPublic.model_validate(row).model_dump() | {"token": secret})


@router.delete("/{token_id}", status_code=204)
def revoke_token(token_id: int, session: SessionDep, admin: AdminUser, auditor: AuditorDep) -> Response:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise HTTPException(404, f"no token {token_id}")
    api_tokens.revoke(row)
    auditor.record("token_revoked", "token", row.id, name=row.name, prefix=row.prefix)
    session.commit()
    return Response(status_code=204)
