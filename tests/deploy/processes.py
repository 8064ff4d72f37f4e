"""The deployment's processes, started for real on free loopback ports: gunicorn with the
checked-in deploy/gunicorn.conf.py, PgBouncer (Debian's package) with the checked-in
deploy/pgbouncer/pgbouncer.ini, provisioning agents and the controller. Each is stopped
by the test that started it; its output goes to a file, shown when it fails."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.api.live import free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
PGBOUNCER_INI = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"


class Process:
    """A subprocess with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code, self.process = self.process.returncode, None
        return code


def wait_http(url: str, process: Process, timeout: float = 60, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == status:
                    return
        except urllib.error.HTTPError as error:
            if error.code == status:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if not process.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not answer {url}:\n{process.log()[-3000:]}")
        time.sleep(0.1)


def portal_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PORTAL_", "PROMETHEUS_", "WEB_CONCURRENCY", "GUNICORN"))}
    return {**env, "DATABASE_URL": database_url, "SECRET_KEY": "deploy-test-secret",
            "PORTAL_AGENT": "off", **extra}


def gunicorn(name: str, workdir: Path, env: dict[str, str], port: int | None = None
             ) -> tuple[Process, str]:
    """A web replica as deployed: the checked-in gunicorn configuration."""
    port = port or free_port()
    metrics_dir = workdir / f"{name}-metrics"
    metrics_dir.mkdir(exist_ok=True)
    env = {"PORTAL_WEB_ACCESS_LOG": "", "PORTAL_WEB_LOG_LEVEL": "info", **env,
           "PORTAL_BIND": f"127.0.0.1:{port}", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    process = Process(name, [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF),
                             "wsgi:app"], env, workdir)
    return process, f"http://127.0.0.1:{port}"


class PgBouncer:
    """Debian's pgbouncer with deploy/pgbouncer/pgbouncer.ini: its pooling settings as
    shipped, its site-specific ones (addresses, authentication, files) for this test."""

    def __init__(self, workdir: Path, postgres_host: str, postgres_port: int,
                 pool_size: int | None = None) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer is not installed: `make system` (Debian package "
                               "pgbouncer) installs it")
        # Readable by the unprivileged user pgbouncer drops to when started as root.
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir=workdir))
        self.dir.chmod(0o755)
        self.port = free_port()
        config = configparser.ConfigParser(interpolation=None, strict=False)
        config.optionxform = str  # type: ignore[assignment,method-assign]
        config.read(PGBOUNCER_INI)
        self.shipped = {key: config["pgbouncer"][key] for key in config["pgbouncer"]}
        config["databases"] = {"*": f"host={postgres_host} port={postgres_port}"}
        settings = config["pgbouncer"]
        settings.update({
            "listen_addr": "127.0.0.1", "listen_port": str(self.port), "unix_socket_dir": "",
            "auth_type": "trust", "auth_file": str(self.dir / "userlist.txt"),
            "pidfile": "", "logfile": "",
        })
        if pool_size is not None:
            settings["default_pool_size"] = str(pool_size)
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        self.ini = self.dir / "pgbouncer.ini"
        with self.ini.open("w") as out:
            config.write(out)
        for path in self.dir.iterdir():
            path.chmod(0o644)
        args = [binary, str(self.ini)]
        if os.geteuid() == 0:
            args[1:1] = ["-u", "nobody"]  # pgbouncer refuses to run as root
        self.process = Process("pgbouncer", args, dict(os.environ), workdir)

    def start(self) -> PgBouncer:
        self.process.start()
        deadline = time.monotonic() + 20
        import psycopg

        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                if not self.process.alive() or time.monotonic() > deadline:
                    raise RuntimeError("pgbouncer did not start:\n"
                                       + self.process.log()[-3000:]) from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.process.stop(signal.SIGINT)  # SIGINT: safe shutdown
