"""Signed delivery with retries, URL checks, a real receiver, and two controllers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import WebhookDelivery, utcnow
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import SimulateDriver
from portal.scheduler.reservation import NodeSpec, reserve
from portal.webhooks.service import (
    RETRY_DELAYS,
    WebhookError,
    check_url,
    deliver_due,
    emit,
    resend,
)
from tests import factories as f
from tests.webhooks.helpers import Receiver, Recorder, deliveries, hook


def queued(**hook_kw) -> WebhookDelivery:
    tenant = f.tenant()
    hook(**hook_kw)
    emit("vm.status_changed", "vm", 1, tenant.id, "provisioning", {"status": "active"})
    db.session.commit()
    (row,) = deliveries()
    return row


def test_the_signature_is_hmac_sha512_of_the_exact_body(app):
    row = queued()
    send = Recorder(200)
    assert deliver_due(utcnow(), send=send) == 1
    ((url, body, headers),) = send.calls
    assert url == "http://93.184.216.34/hook" and body == row.body.encode()
    expected = hmac.new(b"s3cret", body, hashlib.sha512).hexdigest()
    assert hmac.compare_digest(headers["X-Hook-Signature"], expected)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Hook-Event"] == "vm.status_changed"
    assert headers["X-Hook-Delivery"] == row.event_id == json.loads(body)["id"]
    assert abs(int(headers["X-Hook-Timestamp"]) - int(utcnow().timestamp())) < 5 * 3600 * 24
    (done,) = deliveries()
    assert (done.status, done.attempts, done.last_status_code) == ("delivered", 1, 200)
    assert deliver_due(utcnow() + timedelta(days=1), send=send) == 0  # never sent twice


def test_retries_after_30s_2min_10min_30min_2h_then_fails(app):
    queued()
    send = Recorder(500, 502, None, 404, 500, 503)
    now = utcnow()
    for attempt, delay in enumerate(RETRY_DELAYS, start=1):
        assert deliver_due(now, send=send) == 1
        (row,) = deliveries()
        assert row.status == "pending" and row.attempts == attempt
        assert row.next_attempt_at == now + timedelta(seconds=delay)
        assert deliver_due(now + timedelta(seconds=delay - 1), send=send) == 0  # not yet
        now += timedelta(seconds=delay)
    assert [30, 120, 600, 1800, 7200] == list(RETRY_DELAYS)
    assert deliver_due(now, send=send) == 1
    (row,) = deliveries()
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 6, 503)
    assert row.next_attempt_at is None
    assert deliver_due(now + timedelta(days=1), send=send) == 0
    assert len(send.calls) == 6


def test_an_unreachable_receiver_is_logged(app):
    queued()
    deliver_due(utcnow(), send=Recorder(None))
    (row,) = deliveries()
    assert row.last_status_code is None and "connection refused" in row.last_error


def test_resend_sends_a_failed_delivery_again_with_the_same_event_id(app):
    row = queued()
    deliver_due(utcnow(), send=Recorder(200))
    resend(deliveries()[0])
    db.session.commit()
    send = Recorder(200)
    assert deliver_due(utcnow() + timedelta(seconds=1), send=send) == 1
    assert json.loads(send.calls[0][1])["id"] == row.event_id


def test_resend_of_a_delivery_not_yet_attempted_is_refused(app):
    row = queued()
    with pytest.raises(WebhookError, match="not been attempted"):
        resend(row)


@pytest.mark.parametrize("url, message", [
    ("ftp://93.184.216.34/x", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("http:///nohost", "no host"),
    ("http://user:pw@93.184.216.34/", "user name or password"),
    ("http://127.0.0.1:8080/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
])
def test_refused_urls(url, message):
    with pytest.raises(WebhookError, match=message):
        check_url(url)


def test_private_addresses_allowed_only_when_asked():
    assert check_url("http://10.1.2.3/x", allow_private=True) == "http://10.1.2.3/x"
    with pytest.raises(WebhookError, match="http:// or https://"):
        check_url("gopher://10.1.2.3/", allow_private=True)
    assert check_url("https://93.184.216.34/x") == "https://93.184.216.34/x"


def test_the_host_is_checked_again_at_delivery_time(app):
    """A name that resolved to a public address at creation may point inside later."""
    queued(url="http://hooks.example.test/x")
    send = Recorder(200)
    deliver_due(utcnow(), send=send, resolve=lambda host: ["169.254.169.254"])
    assert send.calls == []
    (row,) = deliveries()
    assert row.status == "pending" and row.attempts == 1 and "link-local" in row.last_error


def test_a_local_receiver_gets_a_signed_post_when_a_vm_becomes_active(app):
    grp = f.group()
    f.server(group=grp, cpu=64, memory=256, storage=2000)
    tenant, flavor = f.tenant(), f.flavor(cpu=4, memory=8, storage=50)
    f.quota(tenant, grp)
    with Receiver() as receiver:
        hook(events=("vm.status_changed", "job.finished"), url=receiver.url,
             allow_private=True)
        db.session.commit()
        (vm,) = reserve(tenant, grp, [NodeSpec("web-1", "standalone", flavor)], user=None)
        Agent(DatabaseQueue(app), SimulateDriver(delay=0), name="agent").run_once()
        assert deliver_due(utcnow()) == 2
        assert {r.status for r in deliveries()} == {"delivered"}
        events = {e["type"]: e for e in receiver.events()}
        assert events["vm.status_changed"]["resource"]["id"] == vm.id
        assert events["vm.status_changed"]["previous_status"] == "provisioning"
        assert events["vm.status_changed"]["data"]["status"] == "active"
        assert events["job.finished"]["data"]["status"] == "succeeded"
        for headers, body in receiver.requests:
            assert headers["X-Hook-Signature"] == hmac.new(
                b"s3cret", body, hashlib.sha512).hexdigest()


def test_a_receiver_answering_an_error_is_retried(app):
    with Receiver(status=503) as receiver:
        queued(url=receiver.url, allow_private=True)
        deliver_due(utcnow())
    (row,) = deliveries()
    assert (row.status, row.last_status_code) == ("pending", 503)
    assert len(receiver.requests) == 1


def test_two_controllers_deliver_each_event_once(pg_app):
    tenant = f.tenant()
    with Receiver() as receiver:
        hook(url=receiver.url, allow_private=True)
        hook(url=receiver.url, allow_private=True, events=("vm.status_changed",))
        for i in range(20):
            emit("vm.status_changed", "vm", i, tenant.id, "provisioning", {})
        db.session.commit()
        barrier = threading.Barrier(2)
        errors = []

        def controller():
            with pg_app.app_context():
                try:
                    barrier.wait()
                    while deliver_due(utcnow(), limit=3):
                        pass
                except Exception as error:  # pragma: no cover - reported below
                    errors.append(error)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=controller) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        sent = [(h["X-Hook-Delivery"], json.loads(b)["id"]) for h, b in receiver.requests]
    assert len(sent) == 40
    rows = db.session.scalars(select(WebhookDelivery)).all()
    assert {r.status for r in rows} == {"delivered"} and {r.attempts for r in rows} == {1}


def test_the_real_sender_connects_to_the_checked_address(app, monkeypatch):
    """No second DNS lookup between the check and the connection (DNS rebinding): the
    host name below resolves nowhere, yet the POST reaches the address the check saw."""
    from portal.webhooks import service

    monkeypatch.setattr(service, "_forbidden", lambda address: None)  # 127.0.0.1 is "public"
    with Receiver() as receiver:
        port = receiver.server.server_port
        queued(url=f"http://hooks.invalid:{port}/hook?x=1")
        assert deliver_due(utcnow(), resolve=lambda host: ["127.0.0.1"]) == 1
        ((headers, body),) = receiver.requests
    assert headers["Host"] == f"hooks.invalid:{port}"
    assert [r.status for r in deliveries()] == ["delivered"]


def test_the_real_sender_reports_what_went_wrong():
    from portal.webhooks.service import send_http

    refused = send_http("http://127.0.0.1:9/", b"{}", {}, timeout=2)
    assert refused.status_code is None and "Could not reach" in refused.error
    with Receiver(status=410) as receiver:
        gone = send_http(receiver.url, b"{}", {"Content-Type": "application/json"})
    assert (gone.status_code, gone.ok) == (410, False) and "410" in gone.error
