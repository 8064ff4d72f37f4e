"""The token's own account: who am I, and my API tokens (every role manages its own, as on
the profile page). Minting and revoking tokens needs an ``admin``-scoped token, so that a
leaked ``read`` or ``write`` token cannot make itself long-lived children."""

from __future__ import annotations

from typing import Literal

from flask import g
from flask_login import current_user
from pydantic import Field

from portal.api import api
from portal.api.core import ANY_ROLE
from portal.api.problems import CONFLICT, ApiError, invalid, not_found
from portal.api.schemas import Id, Input, Output, Stamped, UtcDatetime, page_of
from portal.auth import tokens
from portal.auth.access import administered_tenant_ids, roles_of
from portal.extensions import db
from portal.i18n import _
from portal.models import ApiToken

TAGS = ("account",)
Scope = Literal[tokens.SCOPES]  # type: ignore[valid-type]


class Me(Output):
    id: int
    username: str
    display_name: str
    roles: list[str] = Field(description="operator, tenant_admin, maintainer — as this token "
                                         "acts (a tenant-restricted token: tenant_admin)")
    tenant_ids: list[int] = Field(description="Tenants this token may act for.")
    maintainer_id: int | None
    scopes: list[Scope] = Field(description="The scopes of the token in use.")


class Token(Stamped):
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it.")
    scopes: list[Scope] = Field(description="read: GET only; write: may change what the "
                                            "user's roles allow; admin: write, and may mint "
                                            "and manage tokens.")
    tenant_id: int | None = Field(description="The only tenant the token may see and act "
                                              "in; null: all the user's access.")
    expires_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class NewToken(Token):
    token: str = Field(description="The secret, shown this once: it is stored hashed.")


class Revoked(Output):
    revoked: int = Field(description="How many tokens were revoked.")


TokenPage = page_of(Token)


class TokenIn(Input):
    name: str = Field(min_length=1, max_length=64)
    scopes: list[Scope] = Field(min_length=1, max_length=len(tokens.SCOPES), description=(
        "Each scope includes the ones before it: read < write < admin."))
    expires_at: UtcDatetime | None = Field(None, description=(
        f"Default: {tokens.DEFAULT_LIFETIME.days} days from now; at most "
        f"{tokens.MAX_LIFETIME.days} days."))
    tenant_id: Id | None = Field(None, description=(
        "Restrict the token to this tenant (operators: any; others: a tenant they administer)."))


def token_out(token: ApiToken) -> Token:
    return Token.model_validate({
        **{name: getattr(token, name) for name in (
            "id", "created_at", "updated_at", "name", "prefix", "tenant_id", "last_used_at",
            "revoked_at")},
        "scopes": token.scopes.split(),
        "expires_at": tokens.expires(token),
    })


@api.operation("GET", "/me", summary="The token's user", tags=TAGS, access=ANY_ROLE,
               response=Me)
def me():
    user = current_user
    acting_for = administered_tenant_ids(user)
    return Me(
        id=user.id, username=user.username, display_name=user.display_name,
        roles=sorted(roles_of(user)),
        tenant_ids=sorted(acting_for if acting_for is not None
                          else (t.tenant_id for t in user.tenant_links)),
        maintainer_id=user.maintainer.id if user.maintainer is not None else None,
        scopes=g.api_token_scopes,
    )


@api.operation("GET", "/tokens", summary="List my tokens", tags=TAGS, access=ANY_ROLE,
               response=TokenPage)
def list_tokens():
    """Newest first, with their scopes, tenant, expiry and last use; never the secrets."""
    mine = tokens.tokens_of(current_user)
    return {"items": [token_out(t) for t in mine], "total": len(mine)}


@api.operation("POST", "/tokens", summary="Create a token (admin scope)", tags=TAGS,
               access=ANY_ROLE, body=TokenIn, response=NewToken, status=201, errors=(409,),
               idempotent=False)  # never store a token's secret for replay
def create_token(body: TokenIn):
    """Only with an ``admin``-scoped token. 409 when the user already holds the most live
    tokens allowed."""
    try:
        issued = tokens.issue_token(
            current_user._get_current_object(), body.name, scopes=body.scopes,
            expires_at=body.expires_at, tenant_id=body.tenant_id)
    except tokens.TooManyTokens as error:
        raise ApiError(CONFLICT, str(error)) from None
    except tokens.TokenError as error:
        raise invalid(error.field or "body", str(error)) from None
    db.session.commit()
    return NewToken.model_validate({**token_out(issued.token).model_dump(),
                                    "token": issued.secret})


@api.operation("DELETE", "/tokens/{token_id}", summary="Revoke one of my tokens (admin scope)",
               tags=TAGS, access=ANY_ROLE, response=Token)
def revoke_token(token_id: int):
    """Revoking the token in use is allowed: the next request with it answers 401."""
    try:
        token = tokens.revoke_token(current_user._get_current_object(), token_id)
    except tokens.TokenError:
        raise not_found(_("No such token of yours.")) from None
    db.session.commit()
    return token_out(token)


@api.operation("POST", "/tokens/revoke-all", summary="Revoke all my tokens (admin scope)",
               tags=TAGS, access=ANY_ROLE, response=Revoked)
def revoke_all_tokens():
    """Every token of the user stops working at once, the one in use included: what to do
    when a token may have leaked. Create a new one from the profile page afterwards."""
    revoked = tokens.revoke_all(current_user._get_current_object())
    db.session.commit()
    return Revoked(revoked=revoked)
