"""A local receiver on 127.0.0.1 and small builders for the webhook tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from portal.extensions import db
from portal.models import Webhook, WebhookDelivery
from portal.webhooks.service import Sent


class Receiver:
    """An HTTP server in a thread that records every POST and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


class Recorder:
    """An injected sender: records what would be POSTed and answers the next status."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url, body, headers) -> Sent:
        self.calls.append((url, body, headers))
        status = self.statuses.pop(0) if self.statuses else 200
        return Sent(status, "" if status else "connection refused")


def hook(events=("vm.status_changed",), tenant=None, url="http://93.184.216.34/hook",
         **kw) -> Webhook:
    row = Webhook(name="ci", url=url, secret="s3cret", events=list(events),
                  tenant_id=tenant.id if tenant is not None else None, **kw)
    db.session.add(row)
    db.session.flush()
    return row


def deliveries(**filters) -> list[WebhookDelivery]:
    db.session.expire_all()
    return db.session.scalars(
        db.select(WebhookDelivery).filter_by(**filters).order_by(WebhookDelivery.id)).all()
