"""Idempotency-Key on the API's writes (SPEC 8.6): a retry replays the first answer and
never acts twice."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from sqlalchemy import func, select

from portal.api.idempotency import fingerprint, prune_idempotency_keys
from portal.extensions import db
from portal.models import IdempotencyKey, ProvisionJob, VirtualMachine
from portal.models.base import utcnow
from tests.api.conftest import assert_problem, vm_body


def keyed(key: str) -> dict:
    return {"headers": {"Idempotency-Key": key}}


def vm_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(VirtualMachine))


def key_rows() -> list[IdempotencyKey]:
    db.session.rollback()
    return list(db.session.scalars(select(IdempotencyKey)))


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(api, estate):
    first = api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1"))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1"))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert vm_count() == 1


def test_the_body_is_compared_in_canonical_form(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1"))
    body = dict(reversed(list(vm_body(estate).items())))  # same JSON, other key order
    again = api.call("POST", "/vms", estate.admin_a, data=" " + json.dumps(body),
                     content_type="application/json", **keyed("k-1"))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert vm_count() == 1


def test_the_same_key_with_another_body_is_refused(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1"))
    other = api.post("/vms", estate.admin_a, vm_body(estate, name="db"), **keyed("k-1"))
    body = assert_problem(other, 422, "validation_error")
    assert "already used for another request" in body["detail"]
    assert vm_count() == 1


def test_the_same_key_on_another_path_is_refused(api, estate):
    created = api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1")).get_json()
    vm_id = created["items"][0]["id"]
    other = api.delete(f"/vms/{vm_id}", estate.admin_a, **keyed("k-1"))
    assert_problem(other, 422, "validation_error")
    db.session.rollback()
    assert db.session.get(VirtualMachine, vm_id).status == "provisioning"


def test_a_request_still_in_flight_answers_409(app, api, estate):
    with app.test_request_context("/api/v1/vms", method="POST", json=vm_body(estate)):
        digest = fingerprint()
    db.session.add(IdempotencyKey(user_id=user_id(api, estate.admin_a), key="k-1",
                                  method="POST", path="/api/v1/vms", fingerprint=digest,
                                  state="in_flight"))
    db.session.commit()
    response = api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1"))
    assert_problem(response, 409, "conflict")
    assert "still in progress" in response.get_json()["detail"]
    assert vm_count() == 0


def user_id(api, token: str) -> int:
    return api.get("/me", token).get_json()["id"]


def test_a_request_that_fails_validation_stores_nothing(api, estate):
    bad = api.post("/vms", estate.admin_a, vm_body(estate, count=0), **keyed("k-1"))
    assert_problem(bad, 422, "validation_error")
    unknown_spec = api.post("/vms", estate.admin_a, vm_body(estate, spec_id=999999),
                            **keyed("k-1"))
    assert unknown_spec.status_code == 422
    assert key_rows() == []
    # The key is free: the corrected request runs.
    fixed = api.post("/vms", estate.admin_a, vm_body(estate), **keyed("k-1"))
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert vm_count() == 1


def test_a_malformed_key_is_refused_and_nothing_runs(api, estate):
    for key in ("", "has space", "x" * 256, "caf\u00e9"):
        response = api.post("/vms", estate.admin_a, vm_body(estate),
                            headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")})
        body = assert_problem(response, 422, "validation_error")
        assert "header.Idempotency-Key" in body["errors"]
    assert vm_count() == 0 and key_rows() == []


def test_a_refusal_is_stored_and_replayed(api, estate):
    refused = api.post("/vms", estate.admin_a, vm_body(estate, count=5), **keyed("k-1"))
    assert_problem(refused, 409, "quota_exceeded")
    again = api.post("/vms", estate.admin_a, vm_body(estate, count=5), **keyed("k-1"))
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert again.mimetype == "application/problem+json"
    assert again.get_json() == refused.get_json()
    assert [row.state for row in key_rows()] == ["done"]


def test_keys_belong_to_their_user(api, estate):
    mine = api.post("/vms", estate.operator, vm_body(estate), **keyed("shared"))
    theirs = api.post("/vms", estate.admin_a, vm_body(estate, name="other"),
                      **keyed("shared"))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert vm_count() == 2


def test_a_delete_is_replayed_not_repeated(api, estate):
    vm_id = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]["id"]
    first = api.delete(f"/vms/{vm_id}", estate.admin_a, **keyed("del-1"))
    assert first.status_code == 202
    again = api.delete(f"/vms/{vm_id}", estate.admin_a, **keyed("del-1"))
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    unkeyed = api.delete(f"/vms/{vm_id}", estate.admin_a)
    assert unkeyed.status_code == 409  # without the key, deleting twice is refused


def test_the_agents_job_protocol_ignores_the_header(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate))
    claimed = api.post("/provision-jobs/claim", estate.operator, {"agent": "a1"},
                       **keyed("claim"))
    assert claimed.get_json()["total"] == 1
    assert key_rows() == []
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ProvisionJob)) == 1


def test_a_concurrent_double_submit_creates_one_vm(pg_app, pg_estate):
    estate, answers, body = pg_estate, [], vm_body(pg_estate)
    start = threading.Barrier(2)

    def submit() -> None:
        client = pg_app.test_client()
        start.wait()
        response = client.post("/api/v1/vms", json=body, headers={
            "Authorization": f"Bearer {estate.admin_a}", "Idempotency-Key": "twice"})
        answers.append((response.status_code, response.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers, key=str) in (
        [(201, None), (201, "true")], [(201, None), (409, None)]), answers
    assert vm_count() == 1


def test_prune_forgets_keys_older_than_a_day(api, estate):
    api.post("/vms", estate.admin_a, vm_body(estate), **keyed("old"))
    api.post("/vms", estate.admin_a, vm_body(estate, name="new"), **keyed("new"))
    db.session.rollback()
    old = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "old"))
    old.created_at = utcnow() - timedelta(hours=25)
    db.session.commit()
    assert prune_idempotency_keys(utcnow()) == 1
    assert [row.key for row in key_rows()] == ["new"]
    # A forgotten key is a new request.
    again = api.post("/vms", estate.admin_a, vm_body(estate, name="old2"), **keyed("old"))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers


def test_the_controller_prunes_old_keys(api, estate):
    from portal.controller import run_once

    api.post("/vms", estate.admin_a, vm_body(estate), **keyed("old"))
    db.session.rollback()
    stamp = db.session.scalar(select(IdempotencyKey.created_at))
    run_once("controller-1", stamp + timedelta(hours=23))
    assert len(key_rows()) == 1
    run_once("controller-1", stamp + timedelta(hours=25))
    assert key_rows() == []
