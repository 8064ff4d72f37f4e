"""portalctl: the Resource Portal's JSON API for pipelines (SPEC 8.6).

Standard library only, so that it runs wherever the project is installed. It reads
``PORTAL_URL`` and ``PORTAL_TOKEN`` (``--url``/``--token`` override them), prints the API's
JSON body on stdout and problems on stderr, and ends with an exit code a pipeline can
branch on (see EXIT_CODES). Every write carries an ``Idempotency-Key`` (one per invocation
unless ``--idempotency-key`` is given), so that retrying a request whose answer was lost
never acts twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

API_PREFIX = "/api/v1"
MAX_SERVER_WAIT = 20  # the API holds a waiting GET at most this long (SPEC 8.6)
POLL_SECONDS = 1.0

OK, USAGE, NOT_FOUND, REFUSED, TIMEOUT, FAILED, UNREACHABLE, UNAUTHORIZED = 0, 2, 3, 4, 5, 6, 7, 8
EXIT_CODES = {
    OK: "success",
    USAGE: "usage or validation error (bad flags, bad body, 400/422)",
    NOT_FOUND: "not found (404)",
    REFUSED: "refused: no quota, quota exceeded, insufficient capacity or conflict (409)",
    TIMEOUT: "--wait timed out before the VM/cluster got there",
    FAILED: "the VM/cluster ended in error (or was deleted) while waiting",
    UNREACHABLE: "portal unreachable or a server error (5xx)",
    UNAUTHORIZED: "unauthorized or forbidden (401/403: bad token, missing scope or role)",
}
EPILOG = "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items()) + (
    "\n\nenvironment: PORTAL_URL (e.g. https://portal.example), PORTAL_TOKEN (an API token)"
)


class Failure(Exception):
    """Ends the command: ``message`` to stderr, ``code`` as the exit status, and the API's
    problem body (if any) on stdout, so a pipeline can read its machine-readable code."""

    def __init__(self, code: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.code, self.body = code, body


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return REFUSED
    if status >= 500:
        return UNREACHABLE
    return USAGE


class Client:
    def __init__(self, url: str, token: str, retries: int = 3, timeout: float = 60) -> None:
        base = url.rstrip("/")
        self.base = base if base.endswith(API_PREFIX) else base + API_PREFIX
        self.token, self.retries, self.timeout = token, retries, timeout

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None,
                idempotency_key: str | None = None, raw: bool = False) -> tuple[int, Any]:
        """(status, body) of a 2xx answer; any other answer raises Failure. Connection
        errors and 502/503/504 are retried (writes are safe to retry: same key), and so is
        a 409 with Retry-After to a keyed write: the first attempt is still in flight."""
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                    if raw:
                        return response.status, payload
                    return response.status, json.loads(payload) if payload else {}
            except urllib.error.HTTPError as error:
                payload = _json_or_text(error.read())
                if error.code in (502, 503, 504) and attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                if (error.code == 409 and idempotency_key and error.headers.get("Retry-After")
                        and attempt < self.retries):
                    # Our own earlier attempt (whose answer we lost) is still running.
                    time.sleep(_seconds(error.headers["Retry-After"]))
                    continue
                raise Failure(exit_code_for(error.code),
                              f"{method} {path}: HTTP {error.code}: {_explain(payload)}",
                              payload) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                if attempt < self.retries:
                    time.sleep(2**attempt)
                    continue
                reason = getattr(error, "reason", error)
                raise Failure(UNREACHABLE, f"{method} {url}: unreachable: {reason}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)[1]


def _seconds(retry_after: str) -> float:
    try:
        return min(max(float(retry_after), 0.0), 30.0)
    except ValueError:
        return 1.0


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"detail": raw.decode(errors="replace")[:500]}


def _explain(payload: Any) -> str:
    if isinstance(payload, dict):
        text = payload.get("detail") or payload.get("title") or "unexpected answer"
        errors = payload.get("errors")
        if errors:
            text += " " + json.dumps(errors)
        return text
    return str(payload)


# ----------------------------------------------------------------------------- waiting


class Waiter:
    """Reads a resource until ``done(body)`` holds, using the API's ``wait_for``/``timeout``
    where the server supports it (a server that does not simply answers at once, and the
    loop polls instead). A body in ``error`` ends the wait with FAILED."""

    def __init__(self, client: Client, timeout: float) -> None:
        self.client = client
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout

    def until(self, path: str, wait_for: str, done, gone_ok: bool = False) -> Any:
        last = None
        while True:
            remaining = self.deadline - time.monotonic()
            server_wait = int(max(0, min(MAX_SERVER_WAIT, remaining)))
            started = time.monotonic()
            try:
                last = self.client.get(path, wait_for=wait_for, timeout=server_wait)
            except Failure as failure:
                if gone_ok and failure.code == NOT_FOUND:
                    return last
                raise
            if done(last):
                return last
            if last.get("status") in ("error", "deleted") and wait_for != last["status"]:
                # Final: it can never become what we wait for.
                raise Failure(FAILED, f"{path} ended {last['status']}: "
                              f"{last.get('status_message', '')}", last)
            if time.monotonic() >= self.deadline:
                raise Failure(TIMEOUT, f"{path} is still {last.get('status')!r}, not "
                              f"{wait_for!r}, after {self.timeout:g}s", last)
            # A server that waited has used its time; one that ignored wait_for has not.
            spent = time.monotonic() - started
            if spent < server_wait:
                time.sleep(min(POLL_SECONDS, max(0.0, self.deadline - time.monotonic())))


def _status_is(status: str):
    return lambda body: body.get("status") == status


# ---------------------------------------------------------------------------- commands


def vm_create(client: Client, args) -> Any:
    body = {"name": args.name, "tenant_id": args.tenant, "group_id": args.group,
            "spec_id": args.flavor, "count": args.count}
    if args.anti_affinity:
        body["anti_affinity"] = args.anti_affinity
    if args.strategy:
        body["strategy"] = args.strategy
    created = client.request("POST", "/vms", body, idempotency_key=args.idempotency_key)[1]
    if not args.wait:
        return created
    waiter = Waiter(client, args.timeout)
    items = [waiter.until(f"/vms/{vm['id']}", "active", _status_is("active"))
             for vm in created["items"]]
    return {"items": items, "total": len(items)}


def vm_list(client: Client, args) -> Any:
    return client.get("/vms", tenant_id=args.tenant, status=args.status, limit=args.limit,
                      offset=args.offset)


def vm_show(client: Client, args) -> Any:
    return client.get(f"/vms/{args.id}")


def _delete(client: Client, args, path: str) -> Any:
    answer = client.request("DELETE", path, idempotency_key=args.idempotency_key)[1]
    if not args.wait:
        return answer
    final = Waiter(client, args.timeout).until(path, "deleted", _status_is("deleted"),
                                               gone_ok=True)
    return final if final is not None else answer


def vm_delete(client: Client, args) -> Any:
    return _delete(client, args, f"/vms/{args.id}")


CLUSTER_FLAGS = (  # flag, body field, type
    ("name", "name", str), ("tenant", "tenant_id", int), ("group", "group_id", int),
    ("version", "version", str), ("control_planes", "control_planes", int),
    ("control_plane_flavor", "control_plane_flavor_id", int), ("workers", "workers", int),
    ("worker_flavor", "worker_flavor_id", int), ("primary_mesh", "primary_mesh_id", int),
    ("secondary_mesh", "secondary_mesh_id", int), ("bastion", "bastion", str),
    ("bastion_vm", "bastion_vm_id", int), ("bastion_flavor", "bastion_flavor_id", int),
    ("strategy", "strategy", str), ("description", "description", str),
    ("anti_affinity", "anti_affinity", str),
)


def cluster_body(args) -> dict:
    if args.file:
        try:
            text = sys.stdin.read() if args.file == "-" else open(args.file).read()
            body = json.loads(text)
        except (OSError, ValueError) as error:
            raise Failure(USAGE, f"--file {args.file}: {error}") from None
        if not isinstance(body, dict):
            raise Failure(USAGE, f"--file {args.file}: expected a JSON object")
    else:
        body = {}
    for flag, field, _ in CLUSTER_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            body[field] = value
    if args.plugin:
        body["plugins"] = [dict(zip(("name", "version"), p.split("=", 1), strict=False))
                           for p in args.plugin]
    missing = [f"--{flag.replace('_', '-')}" for flag, field, _ in CLUSTER_FLAGS[:4] + (
        CLUSTER_FLAGS[5],) if field not in body]
    if missing:
        raise Failure(USAGE, "cluster create needs --file or " + ", ".join(missing))
    return body


def cluster_create(client: Client, args) -> Any:
    created = client.request("POST", "/clusters", cluster_body(args),
                             idempotency_key=args.idempotency_key)[1]
    if not args.wait:
        return created
    return Waiter(client, args.timeout).until(f"/clusters/{created['id']}", "active",
                                              _status_is("active"))


def _scaled_to(workers: int):
    def done(body: dict) -> bool:
        nodes = [n for n in body.get("nodes", []) if n["role"] == "worker"]
        return (body.get("status") == "active" and len(nodes) == workers
                and all(n["status"] == "active" for n in nodes))
    return done


def cluster_scale(client: Client, args) -> Any:
    body = {"workers": args.workers}
    if args.anti_affinity:
        body["anti_affinity"] = args.anti_affinity
    answer = client.request("POST", f"/clusters/{args.id}/scale", body,
                            idempotency_key=args.idempotency_key)[1]
    if not args.wait:
        return answer
    return Waiter(client, args.timeout).until(f"/clusters/{args.id}", "active",
                                              _scaled_to(args.workers))


def cluster_delete(client: Client, args) -> Any:
    return _delete(client, args, f"/clusters/{args.id}")


def cluster_kubeconfig(client: Client, args) -> None:
    text = client.request("GET", f"/clusters/{args.id}/kubeconfig", raw=True)[1]
    if args.output:
        # A kubeconfig holds credentials: readable by its owner only.
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(text)
    else:
        sys.stdout.write(text.decode())
    return None


# ------------------------------------------------------------------------------ parser


def _writes(parser: argparse.ArgumentParser, wait: bool = True) -> None:
    parser.add_argument("--idempotency-key", metavar="K",
                        help="sent as Idempotency-Key; a retry with the same key and body gets "
                             "the first answer (default: a new key per invocation)")
    if wait:
        parser.add_argument("--wait", action="store_true", help="wait until it is done")
        parser.add_argument("--timeout", type=float, default=600, metavar="S",
                            help="with --wait: give up after S seconds (exit 5; default 600)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portalctl", description="The Resource Portal's API for pipelines: JSON on "
        "stdout, problems on stderr.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("PORTAL_URL"),
                        help="the portal's base URL (default: $PORTAL_URL)")
    parser.add_argument("--token", default=os.environ.get("PORTAL_TOKEN"),
                        help="API token (default: $PORTAL_TOKEN)")
    parser.add_argument("--retries", type=_positive, default=3,
                        help="retries of a connection error or 502/503/504 (default 3)")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{vm,cluster}")

    def command(sub, name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    vm = kinds.add_parser("vm", help="virtual machines").add_subparsers(
        dest="command", required=True)
    p = command(vm, "create", vm_create, "Create COUNT VMs (NAME-1 … NAME-N when COUNT > 1).")
    p.add_argument("--tenant", type=int, required=True, metavar="ID")
    p.add_argument("--group", type=int, required=True, metavar="ID")
    p.add_argument("--flavor", type=int, required=True, metavar="ID", help="the VM spec's id")
    p.add_argument("--name", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--anti-affinity", choices=("soft", "hard", "none"))
    p.add_argument("--strategy")
    _writes(p)
    p = command(vm, "list", vm_list, "List the VMs the token may see.")
    p.add_argument("--tenant", type=int, metavar="ID")
    p.add_argument("--status")
    p.add_argument("--limit", type=int)
    p.add_argument("--offset", type=int)
    p = command(vm, "show", vm_show, "Show one VM.")
    p.add_argument("id", type=int)
    p = command(vm, "delete", vm_delete, "Delete a VM (--wait: until it is deleted).")
    p.add_argument("id", type=int)
    _writes(p)

    cluster = kinds.add_parser("cluster", help="Kubernetes clusters").add_subparsers(
        dest="command", required=True)
    p = command(cluster, "create", cluster_create,
                "Create a cluster from --file BODY.json (- for stdin) or the wizard's fields as "
                "flags (flags override the file's fields).")
    p.add_argument("--file", "-f", metavar="BODY.json")
    for flag, _field, kind in CLUSTER_FLAGS:
        p.add_argument("--" + flag.replace("_", "-"), type=kind, dest=flag)
    p.add_argument("--plugin", action="append", metavar="NAME[=VERSION]")
    _writes(p)
    p = command(cluster, "scale", cluster_scale,
                "Set the number of workers (--wait: until they are all active).")
    p.add_argument("id", type=int)
    p.add_argument("--workers", type=_positive, required=True)
    p.add_argument("--anti-affinity", choices=("soft", "hard", "none"))
    _writes(p)
    p = command(cluster, "delete", cluster_delete, "Delete a cluster (--wait: until deleted).")
    p.add_argument("id", type=int)
    _writes(p)
    p = command(cluster, "kubeconfig", cluster_kubeconfig,
                "Print the cluster's kubeconfig (or write it to FILE, mode 0600).")
    p.add_argument("id", type=int)
    p.add_argument("-o", "--output", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit 2
    if not args.url or not args.token:
        parser.error("set PORTAL_URL and PORTAL_TOKEN (or --url and --token)")
    if getattr(args, "timeout", 0) < 0:
        parser.error("--timeout must be >= 0")
    if hasattr(args, "idempotency_key") and not args.idempotency_key:
        args.idempotency_key = str(uuid.uuid4())
    client = Client(args.url, args.token, retries=args.retries)
    try:
        result = args.func(client, args)
    except Failure as failure:
        if failure.body is not None:
            print(json.dumps(failure.body, indent=2))
        print(f"portalctl: {failure}", file=sys.stderr)
        return failure.code
    if result is not None:
        print(json.dumps(result, indent=2))
    return OK


if __name__ == "__main__":
    sys.exit(main())
