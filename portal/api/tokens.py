"""The token's own account: who am I, and my API tokens (every role manages its own, as on
the profile page)."""

from __future__ import annotations

from flask_login import current_user
from pydantic import Field

from portal.api import api
from portal.api.core import ANY_ROLE
from portal.api.problems import not_found
from portal.api.schemas import Input, Output, Stamped, UtcDatetime, page_of
from portal.auth import service as accounts
from portal.auth.access import roles_of
from portal.extensions import db

TAGS = ("account",)


class Me(Output):
    id: int
    username: str
    display_name: str
    roles: list[str] = Field(description="operator, tenant_admin, maintainer")
    tenant_ids: list[int] = Field(description="Tenants this user administers.")
    maintainer_id: int | None


class Token(Stamped):
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it.")
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class NewToken(Token):
    token: str = Field(description="The secret, shown this once: it is stored hashed.")


TokenPage = page_of(Token)


class TokenIn(Input):
    name: str = Field("", max_length=64)


@api.operation("GET", "/me", summary="The token's user", tags=TAGS, access=ANY_ROLE,
               response=Me)
def me():
    user = current_user
    return Me(
        id=user.id, username=user.username, display_name=user.display_name,
        roles=sorted(roles_of(user)), tenant_ids=sorted(t.tenant_id for t in user.tenant_links),
        maintainer_id=user.maintainer.id if user.maintainer is not None else None,
    )


@api.operation("GET", "/tokens", summary="List my tokens", tags=TAGS, access=ANY_ROLE,
               response=TokenPage)
def list_tokens():
    tokens = current_user.tokens
    return {"items": tokens, "total": len(tokens)}


@api.operation("POST", "/tokens", summary="Create a token", tags=TAGS, access=ANY_ROLE,
               body=TokenIn, response=NewToken, status=201)
def create_token(body: TokenIn):
    issued = accounts.issue_token(current_user._get_current_object(), body.name.strip())
    db.session.commit()
    return NewToken.model_validate({**Token.model_validate(issued.token).model_dump(),
                                    "token": issued.secret})


@api.operation("DELETE", "/tokens/{token_id}", summary="Revoke one of my tokens", tags=TAGS,
               access=ANY_ROLE, response=Token)
def revoke_token(token_id: int):
    """Revoking the token in use is allowed: the next request with it answers 401."""
    try:
        token = accounts.revoke_token(current_user._get_current_object(), token_id)
    except accounts.AccountError:
        raise not_found("No such token of yours.") from None
    db.session.commit()
    return token
