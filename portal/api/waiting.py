"""``wait_for=<status>&timeout=<s>`` on the VM, cluster and job reads (SPEC 8.6): a pipeline
waits for ``active`` in one request instead of polling.

The read polls the status every quarter second and gives its database connection back
between polls (``db.session.remove()``), so a hundred waiting pipelines hold no connection
and no transaction. It answers as soon as the status is reached, at once when the object is
in a final status that can never become the one waited for, or at the timeout with the
current representation; the ``Wait-Result`` header says which.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field
from sqlalchemy import select

from portal.api.problems import not_found
from portal.api.schemas import Query
from portal.extensions import db

POLL_SECONDS = 0.25
MAX_TIMEOUT = 20
RESULT_HEADER = "Wait-Result"
HEADERS = {RESULT_HEADER: (
    "Only with wait_for: `reached` (the status is the one waited for), `final` (a final "
    "status that can never become it, e.g. error or deleted: stop waiting), or `timeout` "
    "(still on the way; the body is the current representation, ask again).")}


def wait_query(name: str, statuses: tuple[str, ...]) -> type[Query]:
    """The query model of a read that can wait for one of ``statuses``."""
    from typing import Literal

    status_type = Literal[statuses]  # type: ignore[valid-type]

    class WaitQuery(Query):
        wait_for: status_type | None = Field(  # type: ignore[valid-type]
            None, description="Answer once the object has this status (or a final one that "
                              "can never become it), or at the timeout; see Wait-Result.")
        timeout: float = Field(10, ge=0, le=MAX_TIMEOUT, description=(
            "With wait_for: seconds to wait at most (0–20, default 10); ignored without."))

    WaitQuery.__name__ = WaitQuery.__qualname__ = name
    return WaitQuery


def wait(model: Any, object_id: int, status: str, query: Any,
         final: tuple[str, ...]) -> str | None:
    """Poll ``model``'s status until the query's ``wait_for``; the Wait-Result (None when
    not asked to wait). The caller has already checked that the object may be read; when
    this returns after polling, the session is a new one and the caller loads it again."""
    if query.wait_for is None:
        return None
    deadline = time.monotonic() + query.timeout
    while True:
        if status == query.wait_for:
            return "reached"
        if status in final:
            return "final"
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        db.session.remove()  # hold no connection and no transaction while asleep
        time.sleep(min(POLL_SECONDS, left))
        status = db.session.scalar(select(model.status).where(model.id == object_id))
        if status is None:  # the row itself is gone
            raise not_found()


def read(model: Any, obj: Any, query: Any, final: tuple[str, ...]) -> tuple[Any, dict]:
    """The object once the wait is over, loaded afresh, and the response headers."""
    result = wait(model, obj.id, obj.status, query, final)
    if result is None:
        return obj, {}
    obj = db.session.get(model, obj.id)
    if obj is None:
        raise not_found()
    return obj, {RESULT_HEADER: result}
