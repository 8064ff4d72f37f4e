"""The container files say what the README promises: a non-root image that compiles its
catalogs and checks /livez, a compose file with no default secret whose web replicas never
migrate, and a gunicorn configuration that outlasts the longest request the API holds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_image_is_slim_non_root_compiles_catalogs_and_checks_livez():
    text = dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "pybabel compile" in text and "portal/translations" in text
    healthcheck = text[text.index("HEALTHCHECK"):].split("\n\n")[0]
    assert "/livez" in healthcheck
    assert re.search(r'^CMD \["gunicorn", "--config", "deploy/gunicorn.conf.py"', text,
                     re.MULTILINE)


def test_the_build_context_leaves_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "instance", ".env"} <= ignored


def test_compose_has_the_topology_and_pgbouncer_as_a_profile():
    services = compose()["services"]
    assert {"postgres", "migrate", "web", "agent", "controller", "pgbouncer"} <= set(services)
    assert services["pgbouncer"]["profiles"] == ["pgbouncer"]
    for name in ("postgres", "migrate", "web", "agent", "controller"):
        assert "profiles" not in services[name], name


def test_only_the_migrate_job_migrates_and_everything_waits_for_it():
    services = compose()["services"]
    assert services["migrate"]["command"] == ["flask", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "agent", "controller"):
        service = services[name]
        assert "upgrade" not in " ".join(service.get("command", [])), name
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    # Migrations connect to PostgreSQL itself, whatever DATABASE_URL points at.
    migration_url = services["migrate"]["environment"]["PORTAL_MIGRATION_DATABASE_URL"]
    assert "@postgres:5432/" in migration_url


def test_no_secret_has_a_default():
    text = COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), (name, uses)
    # Nothing that looks like a credential is written out.
    for service in compose()["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key) and value:
                assert "${" in str(value), (key, value)


def test_processes_without_http_do_not_inherit_the_web_healthcheck():
    services = compose()["services"]
    for name in ("migrate", "agent", "controller"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert "healthcheck" not in services["web"]  # the image's, on /livez


def test_gunicorn_configuration_outlasts_wait_for_and_restarts_gracefully(monkeypatch,
                                                                          tmp_path):
    # The file sets PROMETHEUS_MULTIPROC_DIR for its workers: not for this test process.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = Config()
    namespace: dict = {"__file__": str(ROOT / "deploy" / "gunicorn.conf.py")}
    exec(compile((ROOT / "deploy" / "gunicorn.conf.py").read_text(), "gunicorn.conf.py",
                 "exec"), namespace)
    for key, value in namespace.items():
        if key in config.settings:
            config.set(key, value)
    assert config.worker_class_str == "gthread"
    assert config.timeout > 20 and config.graceful_timeout >= 20  # wait_for holds 20 s
    assert config.preload_app is False  # each worker imports the app (and its metrics)
    for hook in ("on_starting", "pre_fork", "post_fork", "child_exit"):
        assert callable(namespace[hook]), hook
