"""`flask --app wsgi agent run [--once] [--driver simulate|libvirt|exec] [--url URL --token
TOKEN]`; each driver's settings come from its options or their environment variables."""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import AppGroup

from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import DRIVERS, driver_class
from portal.provisioning.http import HttpQueue, QueueUnavailable
from portal.provisioning.jobs import ClaimScope

agent_cli = AppGroup("agent", help="The reference Provision Agent.")

# Which of the options below each driver takes (the constructor's keyword arguments).
DRIVER_OPTIONS = {
    "simulate": ("delay", "failure_rate"),
    "exec": ("command", "timeout", "retry_delay", "max_attempts"),
    "libvirt": ("libvirt_uri", "pool", "network", "image", "domain_prefix", "call_timeout",
                "timeout", "shared_storage"),
}


@agent_cli.command("run")
@click.option("--once", is_flag=True, help="Handle at most one job, then exit.")
@click.option("--driver", type=click.Choice(sorted(DRIVERS)), default="simulate",
              envvar="PORTAL_AGENT_DRIVER", show_default=True)
@click.option("--delay", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="simulate: seconds each job takes.")
@click.option("--failure-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="simulate: share of jobs that fail.")
@click.option("--command", envvar="PORTAL_AGENT_COMMAND", default=None,
              help="exec: the command run for each job, with the job as JSON on its stdin "
                   "(split like a shell would, but run without one).")
@click.option("--timeout", type=click.FloatRange(min=1), envvar="PORTAL_AGENT_TIMEOUT",
              default=None, help="exec, libvirt: seconds a job may take before it fails "
                                 "(exec: the command's process group is killed). "
                                 "Default 1800 (exec), 600 (libvirt).")
@click.option("--retry-delay", type=click.IntRange(min=1), envvar="PORTAL_AGENT_RETRY_DELAY",
              default=30, show_default=True,
              help="exec: seconds before a job whose command said \"not yet\" (exit 75) is "
                   "tried again.")
@click.option("--max-attempts", type=click.IntRange(min=1), envvar="PORTAL_AGENT_MAX_ATTEMPTS",
              default=40, show_default=True,
              help="exec: tries after which \"not yet\" fails the job.")
@click.option("--libvirt-uri", envvar="PORTAL_LIBVIRT_URI", default=None,
              help="libvirt: the hypervisor of servers that have no hypervisor_uri of their "
                   "own; {server} stands for the server's name "
                   "(e.g. qemu+ssh://root@{server}.mgmt/system).")
@click.option("--pool", envvar="PORTAL_LIBVIRT_POOL", default="default", show_default=True,
              help="libvirt: the storage pool that holds the VMs' volumes.")
@click.option("--network", envvar="PORTAL_LIBVIRT_NETWORK", default="default",
              show_default=True, help="libvirt: the network the VMs' interface joins.")
@click.option("--image", envvar="PORTAL_LIBVIRT_IMAGE", default=None,
              help="libvirt: a volume of the pool each new VM's volume is cloned from "
                   "(empty: a blank volume).")
@click.option("--domain-prefix", envvar="PORTAL_LIBVIRT_PREFIX", default="portal-",
              show_default=True,
              help="libvirt: domains are named PREFIX<vm id>-<vm name>; give each portal "
                   "sharing a hypervisor its own.")
@click.option("--call-timeout", type=click.FloatRange(min=0.1),
              envvar="PORTAL_LIBVIRT_CALL_TIMEOUT", default=60.0, show_default=True,
              help="libvirt: seconds any one libvirt call may take.")
@click.option("--shared-storage/--no-shared-storage", envvar="PORTAL_LIBVIRT_SHARED_STORAGE",
              default=False, show_default=True,
              help="libvirt: the pool is the same storage on every server (a migrate does "
                   "not copy the volume, and may move a stopped domain by defining it on "
                   "the target).")
@click.option("--region", "regions", multiple=True, envvar="PORTAL_AGENT_REGIONS",
              help="Only jobs for servers in this region (repeatable).")
@click.option("--dc", "dcs", multiple=True, envvar="PORTAL_AGENT_DCS",
              help="Only jobs for servers in this DC (repeatable).")
@click.option("--group", "groups", multiple=True, envvar="PORTAL_AGENT_GROUPS",
              help="Only jobs for servers of this group, by name (repeatable).")
@click.option("--lease", type=click.IntRange(min=1), default=60, show_default=True,
              help="Seconds a claimed job stays ours before others may take it.")
@click.option("--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds to wait when the queue is empty.")
@click.option("--metrics-interval", type=click.FloatRange(min=0),
              envvar="PORTAL_AGENT_METRICS_INTERVAL", default=60.0, show_default=True,
              help="Seconds between measurements of the servers, VMs and clusters in scope, "
                   "reported to the portal (SPEC 8.4); 0: none.")
@click.option("--url", envvar="PORTAL_URL", default=None,
              help="Talk to this portal over its JSON API instead of the database "
                   "(e.g. https://portal.example); needs --token.")
@click.option("--token", envvar="PORTAL_TOKEN", default=None,
              help="API token of an operator (service) account, for --url.")
def run(once, driver, lease, poll, url, token, regions, dcs, groups, metrics_interval,
        **options):
    """Claim provisioning jobs and carry them out until stopped."""
    if url and not token:
        raise click.UsageError("--url needs --token (an operator's API token).")
    if token and not url:
        raise click.UsageError("--token goes with --url.")
    agent = Agent(
        HttpQueue(url, token) if url else DatabaseQueue(current_app._get_current_object()),
        build_driver(driver, options),
        lease_seconds=lease,
        poll_seconds=poll,
        scope=ClaimScope(tuple(regions), tuple(dcs), tuple(groups)),
        metrics_interval=metrics_interval,
        driver_name=driver,
    )
    if once:
        try:
            done = agent.run_once()
        except QueueUnavailable as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"{agent.name}: {done} job(s) done.")
        return
    click.echo(f"{agent.name}: {driver} driver, waiting for jobs (Ctrl+C to stop).")
    # SIGTERM (systemctl stop, docker stop): finish the job in hand, claim no other.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: agent.stop())
    try:
        agent.run_forever()
    except KeyboardInterrupt:
        agent.stop()
    click.echo(f"{agent.name}: stopped.")


def build_driver(name: str, options: dict):
    """The driver called ``name``, from the options it takes (unset ones: its defaults)."""
    kwargs = {k: options[k] for k in DRIVER_OPTIONS[name] if options.get(k) is not None}
    try:
        return driver_class(name)(**kwargs)
    except ImportError as error:
        raise click.ClickException(
            f"The {name} driver needs a package that is not installed ({error.name}); "
            f"install the project with the '{name}' extra: pip install '.[{name}]'."
        ) from error
    except ValueError as error:
        raise click.UsageError(f"{name} driver: {error}") from error
