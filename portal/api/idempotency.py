"""``Idempotency-Key`` on the API's writes (SPEC 8.6): a pipeline that retries a request
after a timeout gets the first answer again instead of a second VM.

The key is claimed in its own short transaction before the operation runs — the unique
(user, key) constraint makes a concurrent double submit lose with 409, never act twice —
and the answer is stored once the operation has run. Answers that say the request never
ran (422: not valid; 5xx: the server failed) release the key, so the client can retry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Response, json, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.api.problems import CONFLICT, VALIDATION_ERROR, ApiError
from portal.extensions import db
from portal.i18n import _
from portal.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
KEEP = timedelta(hours=24)
# Headers of the first answer worth giving again (Location names the created object).
REPLAYED_HEADERS = ("Location", "Content-Type")
HEADER_HELP = (
    "Makes this request safe to retry: the first answer is stored for 24 hours and a retry "
    "with the same key and the same method, path and body gets it again (with "
    "`Idempotent-Replayed: true`) instead of acting twice. The same key with another "
    "request answers 422; while the first is still running, 409. A request that was not "
    "valid (422) or failed on the server (5xx) stores nothing. Keys are per user; 1–255 "
    "printable ASCII characters without spaces, e.g. a UUID."
)


def request_key() -> str | None:
    """The request's key, or None without the header; 422 for a malformed one."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not KEY_PATTERN.fullmatch(key):
        raise ApiError(VALIDATION_ERROR, _("The %(header)s header must be 1–%(max)s printable "
                                           "ASCII characters without spaces.", header=HEADER,
                                           max=MAX_KEY),
                       errors={f"header.{HEADER}": _("1–%(max)s printable ASCII characters.",
                                                     max=MAX_KEY)})
    return key


def fingerprint() -> str:
    """SHA-256 of method, path and the body in canonical form (keys sorted, no spaces), so
    that the same JSON written differently is the same request."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")) if raw \
            else ""
    except ValueError:  # unreachable after parsing, but never fail on it
        body = raw.decode("utf-8", "replace")
    text = "\n".join((request.method, request.path, body))
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(row: IdempotencyKey, digest: str, key: str) -> Response:
    if row.fingerprint != digest:
        raise ApiError(VALIDATION_ERROR, _("The %(header)s '%(key)s' was already used for "
                                           "another request (another method, path or body); "
                                           "use a new key.", header=HEADER, key=key),
                       errors={f"header.{HEADER}": _("Already used for another request.")})
    if row.state != "done":
        raise ApiError(CONFLICT, _("A request with the %(header)s '%(key)s' is still in "
                                   "progress; retry once it has finished.", header=HEADER,
                                   key=key), headers={"Retry-After": "1"})
    response = Response(row.response_body or "", status=row.response_status)
    for name, value in (row.response_headers or {}).items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response


def _claim(user_id: int, key: str, digest: str) -> Response | None:
    """Insert the in-flight row and commit it; or the answer for a key already taken."""
    db.session.rollback()  # start clean: the claim is a transaction of its own
    row = db.session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
    if row is None:
        db.session.add(IdempotencyKey(user_id=user_id, key=key, method=request.method,
                                      path=request.path[:512], fingerprint=digest,
                                      state="in_flight"))
        try:
            db.session.commit()
            return None
        except IntegrityError:  # a concurrent request claimed it first
            db.session.rollback()
            row = db.session.scalar(select(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
            if row is None:  # it failed and released the key meanwhile
                raise ApiError(CONFLICT, _("A request with the %(header)s '%(key)s' was "
                                           "running; retry.", header=HEADER, key=key),
                               headers={"Retry-After": "1"}) from None
    return _replay(row, digest, key)


def _settle(user_id: int, key: str, response: Response) -> None:
    """Store the answer, or release the key when the request did not run."""
    db.session.rollback()  # whatever the operation left uncommitted is not ours to commit
    row = db.session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
    if row is None:
        return
    if response.status_code == 422 or response.status_code >= 500:
        db.session.delete(row)
    else:
        row.state = "done"
        row.response_status = response.status_code
        row.response_body = response.get_data(as_text=True)
        row.response_headers = {name: response.headers[name] for name in REPLAYED_HEADERS
                                if name in response.headers}
    db.session.commit()


def run_once(user_id: int, key: str, handle: Callable[[], Response],
             on_error: Callable[[Exception], Response]) -> Response:
    """Run ``handle`` at most once for this user and key; ``on_error`` turns an exception
    into the answer the client gets (the blueprint's problem handlers)."""
    digest = fingerprint()
    earlier = _claim(user_id, key, digest)
    if earlier is not None:
        return earlier
    try:
        response = handle()
    except Exception as error:  # noqa: BLE001 - every failure must settle the key
        response = on_error(error)
    _settle(user_id, key, response)
    return response


def prune_idempotency_keys(now: datetime) -> int:
    """Forget keys older than 24 hours; the number removed."""
    result = db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
    db.session.commit()
    return result.rowcount or 0
