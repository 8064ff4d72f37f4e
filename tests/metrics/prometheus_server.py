"""A real Prometheus for the tests (Debian's `prometheus` binary, its own port, config and
storage), scraping a tiny exporter served from a thread: node_exporter-, libvirt-exporter-
and kube-state-metrics-style series with known values."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

GIB = 1024**3
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# What the exporter reports. Counters grow in real time at these rates per second, so
# Prometheus' rate() sees them: idle 0.25 s/s on each CPU is 75 % busy.
SERVERS = {
    "pm-hot": {"idle_rate": 0.25, "mem_total": 64, "mem_avail": 16, "fs_size": 500,
               "fs_avail": 380},
    "pm-cold.example": {"idle_rate": 0.9, "mem_total": 128, "mem_avail": 120, "fs_size": 1000,
                        "fs_avail": 990},
}
VMS = {"vm-web": {"cpu_rate": 1.0, "vcpus": 4, "memory": 6, "disk": 20}}
CLUSTERS = {"k8s-prod": {"ready": 3, "not_ready": 1, "pending": 2, "running": 5,
                         "cpu_requests": 7.5, "memory_requests": 24}}


def exposition(elapsed: float, now: float) -> str:
    lines = []
    for name, s in SERVERS.items():
        instance = f"{name}:9100"
        for cpu in ("0", "1"):
            lines.append(f'node_cpu_seconds_total{{instance="{instance}",cpu="{cpu}",'
                         f'mode="idle"}} {1000 + s["idle_rate"] * elapsed:.6f}')
            lines.append(f'node_cpu_seconds_total{{instance="{instance}",cpu="{cpu}",'
                         f'mode="user"}} {1000 + (1 - s["idle_rate"]) * elapsed:.6f}')
        lines.append(f'node_memory_MemTotal_bytes{{instance="{instance}"}} '
                     f'{s["mem_total"] * GIB}')
        lines.append(f'node_memory_MemAvailable_bytes{{instance="{instance}"}} '
                     f'{s["mem_avail"] * GIB}')
        lines.append(f'node_filesystem_size_bytes{{instance="{instance}",mountpoint="/",'
                     f'fstype="ext4"}} {s["fs_size"] * GIB}')
        lines.append(f'node_filesystem_avail_bytes{{instance="{instance}",mountpoint="/",'
                     f'fstype="ext4"}} {s["fs_avail"] * GIB}')
        # A tmpfs the default query leaves out.
        lines.append(f'node_filesystem_size_bytes{{instance="{instance}",mountpoint="/run",'
                     f'fstype="tmpfs"}} {8 * GIB}')
        lines.append(f'node_filesystem_avail_bytes{{instance="{instance}",mountpoint="/run",'
                     f'fstype="tmpfs"}} 0')
    for name, v in VMS.items():
        lines.append(f'libvirt_domain_info_cpu_time_seconds_total{{domain="{name}"}} '
                     f'{50 + v["cpu_rate"] * elapsed:.6f}')
        lines.append(f'libvirt_domain_info_virtual_cpus{{domain="{name}"}} {v["vcpus"]}')
        lines.append(f'libvirt_domain_info_memory_usage_bytes{{domain="{name}"}} '
                     f'{v["memory"] * GIB}')
        lines.append(f'libvirt_domain_block_stats_allocation_bytes{{domain="{name}",'
                     f'target_device="vda"}} {v["disk"] * GIB}')
    for name, c in CLUSTERS.items():
        for i in range(c["ready"] + c["not_ready"]):
            ready = "true" if i < c["ready"] else "false"
            lines.append(f'kube_node_info{{cluster="{name}",node="n{i}"}} 1')
            for status in ("true", "false"):
                lines.append(f'kube_node_status_condition{{cluster="{name}",node="n{i}",'
                             f'condition="Ready",status="{status}"}} {int(status == ready)}')
        for i in range(c["pending"] + c["running"]):
            phase = "Pending" if i < c["pending"] else "Running"
            for p in ("Pending", "Running"):
                lines.append(f'kube_pod_status_phase{{cluster="{name}",pod="p{i}",'
                             f'phase="{p}"}} {int(p == phase)}')
        lines.append(f'kube_pod_container_resource_requests{{cluster="{name}",pod="p0",'
                     f'resource="cpu",unit="core"}} {c["cpu_requests"]}')
        lines.append(f'kube_pod_container_resource_requests{{cluster="{name}",pod="p0",'
                     f'resource="memory",unit="byte"}} {c["memory_requests"] * GIB}')
    # Each sample stamped with the moment it was computed: a scrape delayed on a busy
    # machine then still gives the counters their exact rates.
    stamp = f" {int(now * 1000)}"
    return "\n".join(line + stamp for line in lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def exporter():
    started = time.time()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            now = time.time()
            body = exposition(now - started, now).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _query(url: str, expression: str) -> list:
    with urllib.request.urlopen(
        f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expression}), timeout=2
    ) as response:
        return json.loads(response.read())["data"]["result"]


@contextmanager
def prometheus(target: str, ready_query: str, wait: float = 60):
    """Start Prometheus scraping ``target`` every second; yield its URL once
    ``ready_query`` (a rate() needing two scrapes) has an answer; stop it."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="prometheus-test-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        # honor_labels: the exporter's own instance labels (pm-hot:9100 …) stand, as if
        # each server had its own node_exporter.
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: portal-test\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        log = open(Path(tmp) / "prometheus.log", "w")
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + wait
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"prometheus exited {process.returncode}: "
                        + (Path(tmp) / "prometheus.log").read_text()[-2000:])
                try:
                    if _query(url, ready_query):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"prometheus at {url} not ready within {wait} s")
                time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()

