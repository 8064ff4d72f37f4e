"""gunicorn for a web replica: `gunicorn --config deploy/gunicorn.conf.py wsgi:app`.

Every value can be changed from the environment (names below) or, as for any gunicorn
setting, with GUNICORN_CMD_ARGS. Sizing is in the README ("Deploying for real").

Graceful restarts: SIGHUP starts new workers with the current code and settings, then
lets the old ones finish their requests; SIGTERM stops accepting connections and lets
running requests finish for up to `graceful_timeout` seconds. Run one replica at a time
through a restart and take it out of the load balancer while it is down (/readyz).

Metrics: each worker counts in files under PROMETHEUS_MULTIPROC_DIR (a fresh private
directory when unset), which /metrics adds up. Files are named after a worker *slot*, not
the worker's pid: a worker that replaces a dead or recycled one takes its free slot and
goes on counting in its files, so counters never go backwards and the directory holds a
bounded set of files however often workers restart (prometheus/client_python#568). A
directory belongs to one master: a binary upgrade (SIGUSR2) sharing it is refused; use
SIGHUP, or restart the replica.
"""

from __future__ import annotations

import fcntl
import glob
import os
import tempfile


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = os.environ.get("PORTAL_BIND", "0.0.0.0:8000")
# CPU-bound work is short (a placement is milliseconds); most of a request is spent waiting
# for PostgreSQL, so a few threads per process use the cores better than more processes.
workers = _int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = _int("PORTAL_WEB_THREADS", 4)
# A wait_for read holds a request up to 20 s; a worker silent for longer is stuck.
timeout = _int("PORTAL_WEB_TIMEOUT", 60)
graceful_timeout = _int("PORTAL_WEB_GRACEFUL_TIMEOUT", 30)
keepalive = _int("PORTAL_WEB_KEEPALIVE", 5)
# Recycle workers now and then (a slow leak never grows unbounded); the jitter keeps them
# from restarting together. 0 turns it off.
max_requests = _int("PORTAL_WEB_MAX_REQUESTS", 10000)
max_requests_jitter = max_requests // 10
# The application is imported by each worker, after the fork, so that every worker's
# metrics (and database connections) are its own.
preload_app = False
# Heartbeat files on a memory file system: an overlay /tmp in a container can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = os.environ.get("PORTAL_WEB_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("PORTAL_WEB_LOG_LEVEL", "info")
# The reverse proxy's X-Forwarded-* headers are the application's business
# (PORTAL_TRUSTED_PROXIES); gunicorn itself believes none.
forwarded_allow_ips = ""
proc_name = "portal-web"
# No control socket (gunicorn 25.1+): one fixed path per user would be shared by every
# replica on the host; signals do the same (HUP, TERM, TTIN/TTOU).
control_socket_disable = True

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
multiproc_dir = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="portal-metrics-")
os.environ[MULTIPROC_ENV] = multiproc_dir
_owner = None  # the directory's lock, held by this master for its life


def on_starting(server) -> None:
    """Before the first worker: this master owns the directory (two masters writing the
    same slot files would corrupt each other's counts), and counts start from zero."""
    global _owner
    os.makedirs(multiproc_dir, exist_ok=True)
    _owner = open(os.path.join(multiproc_dir, ".owner.lock"), "w")  # noqa: SIM115
    try:
        fcntl.flock(_owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"{MULTIPROC_ENV}={multiproc_dir} belongs to another running "
                         "gunicorn: give each master its own directory.") from None
    for path in glob.glob(os.path.join(multiproc_dir, "*.db")):
        os.unlink(path)


def pre_fork(server, worker) -> None:
    """In the master: the lowest slot no living worker holds (a worker leaves
    server.WORKERS only once it has been reaped)."""
    taken = {getattr(w, "metrics_slot", None) for w in server.WORKERS.values()}
    worker.metrics_slot = next(slot for slot in range(len(taken) + 1) if slot not in taken)


def post_fork(server, worker) -> None:
    """In the new worker, before the application (and its metrics) is imported."""
    from prometheus_client import values

    slot = f"slot{worker.metrics_slot}"
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: slot)


def child_exit(server, worker) -> None:
    """In the master, for any end of a worker (recycled, crashed, killed): its slot is
    free for the next one. Its counter and histogram files stay — the next worker of the
    slot goes on from their values; live gauges of that slot are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(f"slot{worker.metrics_slot}", multiproc_dir)


def when_ready(server) -> None:
    server.log.info("metrics of the workers in %s", multiproc_dir)

