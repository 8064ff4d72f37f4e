"""portalctl's retries are safe: a write retried after a lost answer carries the same
Idempotency-Key, and every invocation has its own key unless one is given. A tiny HTTP
server records what portalctl sends (the portal's own handling of keys is tested in
tests/api/test_idempotency.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal import portalctl


class Recorder(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[str, str, str | None]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(("POST", self.path, self.headers.get("Idempotency-Key")))
        status = self.answers.pop(0) if self.answers else 201
        body = json.dumps({"items": [{"id": 1, "status": "provisioning"}], "total": 1}
                          if status == 201 else {"detail": "busy"}).encode()
        self.send_response(status)
        if status == 409:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    Recorder.answers, Recorder.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def create(url, *extra):
    return portalctl.main(["--url", url, "--token", "t", *extra, "vm", "create", "--tenant", "1",
                           "--group", "1", "--flavor", "1", "--name", "x"])


def test_a_retried_write_sends_the_same_key(server, monkeypatch, capsys):
    monkeypatch.setattr(portalctl.time, "sleep", lambda s: None)
    Recorder.answers = [503, 502]
    assert create(server) == 0
    keys = [key for _, _, key in Recorder.seen]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
    assert json.loads(capsys.readouterr().out)["items"][0]["id"] == 1


def test_each_invocation_has_its_own_key_unless_given(server):
    assert create(server) == 0 and create(server) == 0 and create(server) == 0
    generated = {key for _, _, key in Recorder.seen}
    assert len(generated) == 3
    Recorder.seen = []
    assert portalctl.main(["--url", server, "--token", "t", "vm", "create", "--tenant", "1",
                           "--group", "1", "--flavor", "1", "--name", "x",
                           "--idempotency-key", "pipeline-7"]) == 0
    assert Recorder.seen == [("POST", "/api/v1/vms", "pipeline-7")]


def test_retries_give_up_with_exit_7(server, monkeypatch, capsys):
    monkeypatch.setattr(portalctl.time, "sleep", lambda s: None)
    Recorder.answers = [503] * 5
    assert create(server, "--retries", "2") == 7
    assert len(Recorder.seen) == 3
    assert "HTTP 503" in capsys.readouterr().err


def test_a_write_still_in_flight_is_asked_again_with_the_same_key(server, monkeypatch):
    slept = []
    monkeypatch.setattr(portalctl.time, "sleep", slept.append)
    Recorder.answers = [409]
    assert create(server) == 0
    assert slept == [1.0]
    assert len(Recorder.seen) == 2 and len({key for _, _, key in Recorder.seen}) == 1
