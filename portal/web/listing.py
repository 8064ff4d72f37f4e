"""One list mechanism for every list page: quick search, filters, sorting, paging, and a
CSV export of exactly the current view.

An area declares a Listing (its base query, columns, filters, searchable columns); the view
calls `listing.run()` and renders `templates/<area>/list.html`, whose `table` block is what
HTMX asks for. Counting and fetching are two queries whatever the page size; relations are
eager-loaded by the base query, so the query count never grows with the rows shown.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape as _escape
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, request
from markupsafe import Markup
from sqlalchemy import Select, func, or_

from portal.extensions import db


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort: Any = None  # a SQL expression to ORDER BY; None: not sortable
    value: Callable[[Any], Any] | None = None  # CSV value; default: attribute `key`
    numeric: bool = False
    export: bool = True
    # What sorting by this column needs joined in: a relationship (joined inner when its
    # foreign key is NOT NULL, so that PostgreSQL can walk the related table's index and
    # this table's (foreign key, id) index in order) or a function of the statement. Only
    # the page's id query gets it; the COUNT and the rows by id never pay for it.
    join: Any = None

    def csv_value(self, row: Any) -> Any:
        if self.value is not None:
            return self.value(row)
        return getattr(row, self.key, "")


@dataclass(frozen=True)
class Filter:
    name: str
    label: str
    apply: Callable[[Select, str], Select]
    choices: Callable[[], Sequence[tuple[str, str]]] = lambda: ()


@dataclass
class Page:
    page: int
    per_page: int
    total: int
    args: dict[str, str]
    endpoint_url: str

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)

    def canonical_url(self) -> str:
        """This view as a link: only the arguments that differ from the defaults."""
        return self.url_with(page=str(self.page) if self.page > 1 else None)

    def url_for_page(self, number: int) -> str:
        return self.url_with(page=str(number))

    def url_with(self, **changes: str | None) -> str:
        args = {**self.args, **changes}
        args = {k: v for k, v in args.items() if v not in (None, "")}
        return self.endpoint_url + ("?" + urlencode(args) if args else "")


@dataclass
class ListResult:
    rows: list[Any]
    page: Page
    sort: str
    descending: bool
    q: str
    filters: dict[str, str]
    listing: Listing

    def sort_url(self, key: str) -> str:
        """Clicking a sorted column flips its direction; another column sorts ascending."""
        value = f"-{key}" if key == self.sort and not self.descending else key
        return self.page.url_with(sort=value, page=None)

    def sort_state(self, key: str) -> str | None:
        if key != self.sort:
            return None
        return "desc" if self.descending else "asc"

    def csv_url(self) -> str:
        return self.page.url_with(format="csv", page=None, per_page=None)


@dataclass
class Listing:
    name: str
    statement: Callable[[], Select]
    columns: Sequence[Column]
    search: Sequence[Any] = ()
    filters: Sequence[Filter] = ()
    default_sort: str = "name"
    extra_args: Sequence[str] = field(default_factory=tuple)

    def column(self, key: str) -> Column | None:
        """The sortable column with this key, if any."""
        return next((c for c in self.columns if c.key == key and c.sort is not None), None)

    def header(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def prepare(
        self, args: Any
    ) -> tuple[Select, str, dict[str, str], Column, bool, str, Select]:
        """Apply search, filters and sort from the query string; unknown values are
        ignored rather than failing the page (a filter applies only a value it offers:
        on an empty install it offers none). Returns the sorted statement first and, last,
        the same rows unsorted and without the sort's join (for the COUNT and the rows)."""
        stmt = self.statement()
        q = (args.get("q") or "").strip()[:200]
        if q and self.search:
            pattern = f"%{escape_like(q)}%"
            stmt = stmt.where(or_(*(col.ilike(pattern, escape="\\") for col in self.search)))
        active: dict[str, str] = {}
        for flt in self.filters:
            value = (args.get(flt.name) or "").strip()
            if not value:
                continue
            if value not in {key for key, _ in flt.choices()}:
                continue
            stmt = flt.apply(stmt, value)
            active[flt.name] = value
        sort_arg = (args.get("sort") or self.default_sort).strip()
        column = self.column(sort_arg.lstrip("-"))
        if column is None:
            sort_arg = self.default_sort
            column = self.column(sort_arg.lstrip("-"))
        if column is None:
            raise LookupError(f"listing {self.name} cannot sort by {self.default_sort}")
        descending = sort_arg.startswith("-")
        base = stmt
        stmt = _with_join(stmt, column.join)
        order = column.sort.desc() if descending else column.sort.asc()
        # The id breaks ties in the same direction, so that one (column, id) index read
        # forwards or backwards serves the whole ORDER BY.
        stmt = stmt.order_by(order, *self._tiebreak(stmt, descending))
        return stmt, q, active, column, descending, sort_arg, base

    def run(self, base_url: str | None = None, args: Any = None) -> ListResult:
        args = request.args if args is None else args
        stmt, q, active, column, descending, sort_arg, base = self.prepare(args)
        default_per_page = current_app.config["DEFAULT_PER_PAGE"]
        per_page = _int_arg(args.get("per_page"), default_per_page)
        if per_page not in current_app.config["PER_PAGE_CHOICES"]:
            per_page = default_per_page
        total = db.session.scalar(self.count_statement(base)) or 0
        pages = max(1, math.ceil(total / per_page))
        page_no = min(max(1, _int_arg(args.get("page"), 1)), pages)
        rows = self.page_rows(stmt, per_page, (page_no - 1) * per_page, base,
                              split_sort(column, descending), total)
        kept = {
            "q": q,
            "sort": "" if sort_arg == self.default_sort else sort_arg,
            "per_page": "" if per_page == default_per_page else str(per_page),
            **active,
            **{name: args.get(name, "") for name in self.extra_args},
        }
        page = Page(
            page_no, per_page, total, {k: v for k, v in kept.items() if v},
            base_url or request.path,
        )
        return ListResult(rows, page, column.key, descending, q, active, self)

    @staticmethod
    def count_statement(stmt: Select) -> Select:
        """COUNT(*) over the same FROM and WHERE, without the eager-loaded columns and the
        ORDER BY, so that PostgreSQL can drop the outer joins nobody filters on."""
        counted = stmt.with_only_columns(func.count(), maintain_column_froms=True)
        return counted.order_by(None).options()

    @staticmethod
    def page_rows(
        stmt: Select, limit: int, offset: int, base: Select | None = None,
        split: SplitSort | None = None, total: int | None = None,
    ) -> list[Any]:
        """One page of rows. Sorting the full statement would drag every column of every
        eager-loaded table through the sort (100,000 wide VM rows to show 50); instead
        the page's ids come from a narrow query on the same FROM, WHERE and ORDER BY (an
        index can serve it), then only those rows are loaded, by primary key, from `base`
        (the same rows without the sort's join and ORDER BY; default `stmt`) and put in
        the ids' order. Two queries whatever the page size; as a subquery instead,
        PostgreSQL would join every row before it looked at the ids. A sort through a
        foreign key that may be NULL (`split`, see split_sort) reads its ids in two parts;
        `total` (the rows of `base`) saves it a COUNT."""
        entity = stmt.column_descriptions[0]["entity"]
        if entity is None:
            return list(db.session.scalars(stmt.limit(limit).offset(offset)).unique())
        if split is not None and base is not None:
            page_ids = split.page_ids(base, limit, offset, total)
        else:
            ids = stmt.with_only_columns(entity.id, maintain_column_froms=True).options()
            page_ids = list(db.session.scalars(ids.limit(limit).offset(offset)))
        if not page_ids:
            return []
        rows_from = (stmt if base is None else base).order_by(None)
        rows = {row.id: row for row in db.session.scalars(
            rows_from.where(entity.id.in_(page_ids))).unique()}
        return [rows[i] for i in page_ids if i in rows]

    @staticmethod
    def _tiebreak(stmt: Select, descending: bool = False) -> list[Any]:
        entity = stmt.column_descriptions[0]["entity"]
        if entity is None:
            return []
        return [entity.id.desc() if descending else entity.id.asc()]

    def export(self, args: Any = None) -> Response:
        """CSV of every row of the current filtered, sorted view (not just one page)."""
        stmt = self.prepare(request.args if args is None else args)[0]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        exported = [c for c in self.columns if c.export]
        writer.writerow([c.label for c in exported])
        for row in db.session.scalars(stmt).unique():
            writer.writerow([_csv_cell(c.csv_value(row)) for c in exported])
        return Response(
            buffer.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{self.name}.csv"'},
        )


@dataclass(frozen=True)
class SplitSort:
    """A sort by a related table's column through a foreign key that may be NULL (VMs by
    server name). The outer join it needs makes PostgreSQL join and sort every row (100,000
    VMs, some 100 ms, for one page of 50). The rows that have the related row come instead
    from the inner join, which walks the related table's index and this table's
    (foreign key, id) index in order; those without it come by id, last when ascending and
    first when descending, where PostgreSQL sorts NULLs (SQLite, which sorts them the other
    way, gets the same order). A COUNT of the rows without it says where the page falls:
    three queries, whatever the page."""

    relationship: Any
    sort: Any
    descending: bool

    def page_ids(self, base: Select, limit: int, offset: int, total: int | None) -> list[Any]:
        entity = base.column_descriptions[0]["entity"]
        # No related row: a key column is NULL (a foreign key holds wherever none is).
        no_key = or_(*(c.is_(None) for c in self.relationship.property.local_columns))
        ids = base.with_only_columns(entity.id, maintain_column_froms=True).options()
        by_id = entity.id.desc() if self.descending else entity.id.asc()
        related = ids.join(self.relationship).order_by(
            self.sort.desc() if self.descending else self.sort.asc(), by_id)
        unrelated = ids.where(no_key).order_by(by_id)
        if total is None:
            total = db.session.scalar(Listing.count_statement(base)) or 0
        without = db.session.scalar(Listing.count_statement(ids.where(no_key))) or 0
        first, second = (unrelated, related) if self.descending else (related, unrelated)
        in_first = without if self.descending else total - without
        # The page's share of each part (one of them may be none of it).
        first_limit = max(0, min(limit, in_first - offset))
        second_offset = max(0, offset - in_first)
        return [
            *db.session.scalars(first.limit(first_limit).offset(min(offset, in_first))),
            *db.session.scalars(second.limit(limit - first_limit).offset(second_offset)),
        ]


def split_sort(column: Column, descending: bool) -> SplitSort | None:
    """The SplitSort for sorting by this column, if it sorts through a nullable foreign key."""
    join = column.join
    if join is None or not hasattr(join, "property"):
        return None
    columns = getattr(join.property, "local_columns", ())
    if not any(c.nullable for c in columns):
        return None
    return SplitSort(join, column.sort, descending)


def _with_join(stmt: Select, join: Any) -> Select:
    """The statement with what a sort column needs joined in (see Column.join)."""
    if join is None:
        return stmt
    if callable(join) and not hasattr(join, "property"):
        return join(stmt)
    nullable = any(col.nullable for col in join.property.local_columns)
    return stmt.outerjoin(join) if nullable else stmt.join(join)


def option_tags(choices: Sequence[tuple[Any, Any]], selected: str | None = None) -> Markup:
    """The <option> tags of a filter's choices, the chosen one selected. Built here rather
    than in a template loop: a filter of people or tenants has a thousand of them on every
    list page."""
    chosen = None if selected is None else str(selected)
    return Markup("".join(
        f'\n    <option value="{_escape(str(value))}"'
        f'{" selected" if str(value) == chosen else ""}>{_escape(str(label))}</option>'
        for value, label in choices
    ))


def wants_csv() -> bool:
    return request.args.get("format") == "csv"


def _int_arg(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _csv_cell(value: Any) -> Any:
    # Spreadsheet formula injection: a cell starting with = + - @ is data, not a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value
