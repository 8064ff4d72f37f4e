"""POST /api/v1/metrics: a valid batch is written in one go, a batch with any bad sample
is refused whole (422 naming each bad sample and field) and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.metrics.query import agents
from portal.models import AgentPresence, metric_raw, utcnow
from tests.api.conftest import assert_problem
from tests.metrics.conftest import iso, rows


def sample(world, **kw):
    body = {"object_type": "vm", "object_id": world.vm.id, "ts": iso(utcnow()),
            "values": {"cpu_util": 0.5, "memory_used_gib": 3.5, "storage_used_gib": 20}}
    body.update(kw)
    return body


def test_a_batch_is_written_and_the_agent_is_seen(api, world):
    now = utcnow().replace(microsecond=0)
    batch = [sample(world, ts=iso(now - timedelta(minutes=i))) for i in range(3)]
    batch.append({"object_type": "baremetal", "object_id": world.server.id, "ts": iso(now),
                  "values": {"cpu_util": 0.25}})
    batch.append({"object_type": "cluster", "object_id": world.cluster.id, "ts": iso(now),
                  "values": {"nodes_ready": 2, "nodes_total": 3, "pods_pending": 1,
                             "cpu_requested": 6.5, "memory_requested_gib": 12}})
    response = api.post("/metrics", world.operator,
                        {"agent": "edge-1", "driver": "simulate", "samples": batch})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"accepted": 5}
    assert rows() == 5
    stored = db.session.execute(
        select(metric_raw).where(metric_raw.c.object_type == "cluster")).one()
    assert (stored.nodes_ready, stored.nodes_total, stored.pods_pending) == (2, 3, 1)
    assert stored.cpu_util is None and stored.ts == now
    [agent] = agents()
    assert agent.name == "edge-1" and agent.driver == "simulate"
    assert abs((agent.last_seen - utcnow()).total_seconds()) < 30


def test_a_duplicate_sample_is_an_upsert_the_last_wins(api, world):
    ts = iso(utcnow().replace(microsecond=0))
    first = sample(world, ts=ts, values={"cpu_util": 0.1, "memory_used_gib": 1})
    again = sample(world, ts=ts, values={"cpu_util": 0.9})
    assert api.post("/metrics", world.operator, {"samples": [first]}).status_code == 200
    response = api.post("/metrics", world.operator, {"samples": [again, again]})
    assert response.get_json() == {"accepted": 1}
    [row] = db.session.execute(select(metric_raw)).all()
    assert row.cpu_util == pytest.approx(0.9) and row.memory_used_gib == 1
    # In one batch too: the later sample of the same object and time wins.
    later = sample(world, ts=ts, values={"cpu_util": 0.3})
    api.post("/metrics", world.operator, {"samples": [again, later]})
    assert db.session.execute(select(metric_raw.c.cpu_util)).scalar() == pytest.approx(0.3)
    assert rows() == 1


BAD = {
    "unknown object type": (lambda w: {"object_type": "rack"}, "samples.1.object_type"),
    "unknown metric": (lambda w: {"values": {"temperature": 40}}, "samples.1.values.temperature"),
    "cluster metric on a vm": (lambda w: {"values": {"pods_pending": 1}},
                               "samples.1.values.pods_pending"),
    "cpu_util above 1": (lambda w: {"values": {"cpu_util": 1.5}}, "samples.1.values.cpu_util"),
    "negative": (lambda w: {"values": {"memory_used_gib": -1}},
                 "samples.1.values.memory_used_gib"),
    "NaN": (lambda w: {"values": {"cpu_util": float("nan")}}, "samples.1.values.cpu_util"),
    "infinity": (lambda w: {"values": {"storage_used_gib": float("inf")}},
                 "samples.1.values.storage_used_gib"),
    "a string value": (lambda w: {"values": {"cpu_util": "0.5"}}, "samples.1.values.cpu_util"),
    "a boolean value": (lambda w: {"values": {"cpu_util": True}}, "samples.1.values.cpu_util"),
    "no values": (lambda w: {"values": {}}, "samples.1.values"),
    "ts not ISO-8601": (lambda w: {"ts": "yesterday"}, "samples.1.ts"),
    "ts a number": (lambda w: {"ts": 1_700_000_000}, "samples.1.ts"),
    "ts in the future": (lambda w: {"ts": iso(utcnow() + timedelta(minutes=6))},
                         "samples.1.ts"),
    "ts older than 48 h": (lambda w: {"ts": iso(utcnow() - timedelta(hours=49))},
                           "samples.1.ts"),
    "no such vm": (lambda w: {"object_id": 999_999}, "samples.1.object_id"),
    "a server id given as a vm": (lambda w: {"object_type": "cluster",
                                             "object_id": w.cluster.id + 1000,
                                             "values": {"nodes_ready": 1}},
                                  "samples.1.object_id"),
    "object id zero": (lambda w: {"object_id": 0}, "samples.1.object_id"),
    "NUL in ts": (lambda w: {"ts": "2026-01-01T00:00:00\x00Z"}, "samples.1.ts"),
    "NUL in a metric name": (lambda w: {"values": {"cpu\x00util": 0.1}}, "samples.1.values"),
    "an unknown field": (lambda w: {"colour": "red"}, "samples.1.colour"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_sample_refuses_the_whole_batch(api, world, case):
    change, field = BAD[case]
    batch = [sample(world), sample(world, **change(world)), sample(world)]
    response = api.post("/metrics", world.operator, {"agent": "edge-1", "samples": batch})
    body = assert_problem(response, 422, "validation_error")
    assert any(key == field or key.startswith(field + ".") for key in body["errors"]), body
    assert all(key.startswith("samples.1") for key in body["errors"]), body
    assert rows() == 0
    assert db.session.scalar(select(AgentPresence.name)) is None  # nothing written at all


def test_every_bad_sample_is_listed(api, world):
    batch = [sample(world, values={"cpu_util": 2}), sample(world),
             sample(world, ts="soon", object_id=999_999)]
    body = assert_problem(api.post("/metrics", world.operator, {"samples": batch}), 422,
                          "validation_error")
    assert set(body["errors"]) == {"samples.0.values.cpu_util", "samples.2.ts",
                                   "samples.2.object_id"}
    assert rows() == 0


def test_a_batch_over_ten_thousand_samples_is_refused(api, world):
    one = sample(world, values={"cpu_util": 0.5})
    body = assert_problem(api.post("/metrics", world.operator,
                                   {"samples": [one] * 10_001}), 422, "validation_error")
    assert "samples" in body["errors"]
    assert rows() == 0


def test_nul_in_the_agent_name_is_refused(api, world):
    body = assert_problem(api.post("/metrics", world.operator,
                                   {"agent": "a\x00b", "samples": [sample(world)]}),
                          422, "validation_error")
    assert "agent" in body["errors"]
    assert rows() == 0


def test_a_bare_list_is_not_the_body(api, world):
    response = api.call("POST", "/metrics", world.operator, json=[sample(world)])
    assert_problem(response, 422, "validation_error")
    assert rows() == 0


def test_only_operators_with_a_write_token_post(api, world):
    body = {"samples": [sample(world)]}
    assert_problem(api.post("/metrics", world.reader, body), 403, "forbidden")
    assert_problem(api.post("/metrics", world.estate.admin_a, body), 403, "forbidden")
    assert_problem(api.post("/metrics", None, body), 401, "unauthorized")
    assert rows() == 0


def test_a_deleted_vm_takes_no_samples(api, world):
    world.vm.status = "deleted"
    db.session.commit()
    body = assert_problem(api.post("/metrics", world.operator, {"samples": [sample(world)]}),
                          422, "validation_error")
    assert "samples.0.object_id" in body["errors"]
