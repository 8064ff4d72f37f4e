"""The few helpers every page shares: partial rendering, error pages, layout context."""

from __future__ import annotations

from typing import Any

from flask import Flask, make_response, render_template, request
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy import func, or_, select
from werkzeug.exceptions import HTTPException

from portal.extensions import db


def is_partial() -> bool:
    """An HTMX request that wants a fragment. Boosted requests and history restores (the
    back button after a swap) want whole pages."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and not headers.get("HX-Boosted")
        and not headers.get("HX-History-Restore-Request")
    )


def render(template: str, block: str | None = None, **context: Any) -> str:
    """The whole page, or only `block` of the same template for an HTMX request."""
    if block is not None and is_partial():
        return render_block(template, block, **context)
    return render_template(template, **context)


def my_assignment_count() -> int | None:
    """Assignments of the logged-in maintainer, direct and through groups (nav badge)."""
    maintainer = (
        getattr(current_user, "maintainer", None) if current_user.is_authenticated else None
    )
    if maintainer is None:
        return None
    from portal.models import MaintainerToMaintainerGroup, ResourceMaintainer

    group_ids = select(MaintainerToMaintainerGroup.group_id).where(
        MaintainerToMaintainerGroup.maintainer_id == maintainer.id
    )
    return db.session.scalar(
        select(func.count(ResourceMaintainer.id)).where(
            or_(
                ResourceMaintainer.maintainer_id == maintainer.id,
                ResourceMaintainer.maintainer_group_id.in_(group_ids),
            )
        )
    )


def init_web(app: Flask) -> None:
    from portal.web.bars import init_bars
    from portal.web.guard import init_guard
    from portal.web.labels import init_labels
    from portal.web.urls import init_urls
    from portal.web.widgets import init_widgets

    init_guard(app)
    init_labels(app)
    init_bars(app)
    init_widgets(app)
    init_urls(app)

    @app.before_request
    def _sqlite_writers_queue() -> None:
        # SQLite cannot upgrade a read transaction to a write once another writer (the
        # inline agent, say) has committed: it fails with "database is locked" at once.
        # Requests that may write start as writers and wait their turn instead.
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            from portal.extensions import begin_write

            begin_write()

    @app.after_request
    def _vary_on_htmx(response):
        # The same URL answers a page or a fragment: caches must keep them apart.
        response.vary.add("HX-Request")
        return response

    @app.context_processor
    def _layout_context() -> dict[str, Any]:
        return {"my_assignment_count": my_assignment_count()}

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code in (400, 403, 404, 413, 500):
            return render_template(
                f"errors/{error.code}.html", description=_description(error)
            ), error.code
        return error

    @app.errorhandler(500)
    def _server_error(error: Exception):
        db.session.rollback()
        return render_template("errors/500.html", description=None), 500


def _description(error: HTTPException) -> str | None:
    # Werkzeug's stock descriptions are generic; only show ones a view wrote itself.
    default = type(error).description
    return None if error.description == default else error.description


def list_page(listing: Any, template: str, **context: Any) -> Any:
    """A list view: CSV export of the current view, or the page / its table fragment."""
    from portal.web.listing import wants_csv

    if wants_csv():
        return listing.export()
    result = listing.run()
    response = make_response(render(template, "table", result=result, **context))
    if is_partial():
        # The address bar shows the clean link that reproduces this view.
        response.headers["HX-Push-Url"] = result.page.canonical_url()
    return response
