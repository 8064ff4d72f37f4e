"""List endpoints run the list pages' own Listing (base query with its tenant scoping,
quick search, filters, sort columns), paged by ``limit``/``offset``: a filter that works on
a page works the same way in the API, and who sees which rows is decided in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, create_model
from sqlalchemy import Select

from portal.api.schemas import Paging, QueryInt
from portal.extensions import db
from portal.web.listing import Listing, split_sort


@dataclass(frozen=True)
class ApiFilter:
    """A query parameter of the API mapped onto a filter of the page's Listing."""

    name: str  # in the API: tenant_id
    page_name: str  # in the Listing: tenant
    type: Any
    description: str = ""


def list_query(model_name: str, listing: Listing, filters: tuple[ApiFilter, ...] = (),
               **extra: Any) -> type[Paging]:
    """The query model of a list endpoint: paging, q, sort over the Listing's sortable
    columns, and the filters."""
    keys = [c.key for c in listing.columns if c.sort is not None]
    sort_values = tuple(keys) + tuple(f"-{k}" for k in keys)
    fields: dict[str, Any] = {
        "sort": (Literal[sort_values] | None, Field(  # type: ignore[valid-type]
            None, description=f"Column to sort by, '-' first for descending "
                              f"(default {listing.default_sort}).")),
    }
    for flt in filters:
        kind = QueryInt if flt.type is int else flt.type
        fields[flt.name] = (kind | None, Field(None, description=flt.description))
    fields.update(extra)
    model = create_model(model_name, __base__=Paging, **fields)
    model.api_filters = filters  # type: ignore[attr-defined]
    return model


def run(listing: Listing, query: Paging, **args: str) -> dict[str, Any]:
    """``{"items": rows, "total": N}`` for this query. A filter value the page would not
    offer (an unknown or out-of-scope tenant, a region nobody is in) matches nothing."""
    wanted = {"q": query.q or "", "sort": getattr(query, "sort", None) or "", **args}
    filters = getattr(type(query), "api_filters", ())
    for flt in filters:
        value = getattr(query, flt.name)
        if value is not None:
            wanted[flt.page_name] = _arg(value)
    stmt, _q, active, column, descending, _sort, base = listing.prepare(wanted)
    if any(getattr(query, f.name) is not None and f.page_name not in active for f in filters):
        return {"items": [], "total": 0}
    count = total(base)
    rows = Listing.page_rows(stmt, query.limit, query.offset, base,
                             split_sort(column, descending), count)
    return {"items": rows, "total": count}


def total(stmt: Select) -> int:
    """How many rows ``stmt`` selects before paging: a COUNT over its own FROM and WHERE
    (``with_only_columns(func.count())`` alone drops an unfiltered FROM and counts 1)."""
    return db.session.scalar(Listing.count_statement(stmt)) or 0


def _arg(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
