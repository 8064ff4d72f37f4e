"""Building blocks of the API's request and response models (pydantic v2).

Field names are the model field names of SPEC section 2; references are ``<name>_id``
integers. Bounds mirror the database (integer columns, string lengths), so that input the
database would refuse is refused here first, with a per-field message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator

INT32 = 2**31 - 1

Id = Annotated[int, Field(ge=1, le=INT32, description="Id of the referenced object")]
Count = Annotated[int, Field(ge=0, le=INT32)]
# A whole number in the query string ("12" is parsed there: a query string is text), held
# to what the database's integers can compare against.
QueryInt = Annotated[int, Field(ge=0, le=INT32)]


def _utc(value: datetime) -> datetime:
    # The database stores naive UTC; say so, as RFC 3339 asks.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Text cannot contain NUL characters.")
    if isinstance(value, list | tuple):
        for item in value:
            _no_nul(item)
    return value


class Input(BaseModel):
    """A request body: unknown fields are refused (a typo must not pass silently), and
    values are not coerced (strict): ``true`` or ``"12"`` is no integer. Bodies are
    validated as JSON, so dates still arrive as RFC 3339 strings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class Query(BaseModel):
    """Query-string parameters. Unknown ones are ignored, like the pages do."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class Output(BaseModel):
    """A response body, read from ORM objects or plain data."""

    model_config = ConfigDict(from_attributes=True)


class Stamped(Output):
    id: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class Paging(Query):
    """``limit``/``offset`` paging, a quick search ``q`` and ``sort`` (a column key, ``-``
    for descending), as on the list pages."""

    sort_keys: ClassVar[tuple[str, ...]] = ()

    limit: int = Field(50, ge=1, le=500, description="Rows per page (1–500).")
    offset: int = Field(0, ge=0, le=INT32, description="Rows to skip.")
    q: str | None = Field(None, max_length=200, description="Quick search, as on the page.")


_pages: dict[type, type[BaseModel]] = {}


def page_of(item: type[BaseModel], name: str | None = None) -> type[BaseModel]:
    """``{"items": [...], "total": N}`` of ``item``; ``total`` counts every matching row."""
    if item not in _pages:
        _pages[item] = create_model(
            name or f"{item.__name__}Page",
            __base__=Output,
            items=(list[item], ...),
            total=(int, Field(..., ge=0)),
        )
    return _pages[item]


class Problem(BaseModel):
    """RFC 9457 problem details, with the SPEC's machine-readable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description=(
        "validation_error, not_found, forbidden, unauthorized, conflict, no_quota, "
        "quota_exceeded, insufficient_capacity, method_not_allowed, too_large, "
        "server_error, service_unavailable"))
    errors: dict[str, str] | None = Field(
        None, description="validation_error: what is wrong with each field.")
    details: dict[str, Any] | None = Field(
        None, description="Placement refusals: the numbers behind the message (limits, "
                          "usage, per-reason counts of the group's servers).")
    suggestions: list[str] | None = Field(
        None, description="Placement refusals: what would work instead.")
    schema_revision: str | None = Field(
        None, description="service_unavailable from /status: the database's Alembic revision.")
    schema_head: str | None = Field(
        None, description="service_unavailable from /status: the revision this code needs.")
