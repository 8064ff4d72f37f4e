"""A real multi-process server for the API: gunicorn on a free loopback port, over the
test's database. Requests to it go through urllib, as a remote script's would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(database_url: str, workers: int = 2, threads: int = 4):
    """Yield the base URL of a gunicorn serving wsgi:app on ``database_url``."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_AGENT": "off",
           "SECRET_KEY": "live-test"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start: "
                                       + process.stderr.read().decode(errors="replace")) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def call(base: str, method: str, path: str, token: str | None = None,
         body: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    """(status, JSON body) of one request to /api/v1 on the live server."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + "/api/v1" + path, data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else {}


def create_vms_worker(base: str, token: str, body: dict, prefix: str, attempts: int, start,
                      results) -> None:
    """Entry point of a spawned client process: ``attempts`` POST /vms, one VM each, after
    the common start signal; puts (status, code) pairs on ``results``."""
    outcomes = []
    start.wait()
    for i in range(attempts):
        status, answer = call(base, "POST", "/vms", token, {**body, "name": f"{prefix}-{i}"})
        outcomes.append((status, answer.get("code", "created" if status == 201 else "?")))
    results.put(outcomes)
