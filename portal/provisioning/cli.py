"""`flask --app wsgi agent run [--once] [--driver simulate] [--url URL --token TOKEN]`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import DRIVERS
from portal.provisioning.http import HttpQueue, QueueUnavailable

agent_cli = AppGroup("agent", help="The reference Provision Agent.")


@agent_cli.command("run")
@click.option("--once", is_flag=True, help="Handle at most one job, then exit.")
@click.option("--driver", type=click.Choice(sorted(DRIVERS)), default="simulate", show_default=True)
@click.option("--delay", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="simulate: seconds each job takes.")
@click.option("--failure-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="simulate: share of jobs that fail.")
@click.option("--lease", type=click.IntRange(min=1), default=60, show_default=True,
              help="Seconds a claimed job stays ours before others may take it.")
@click.option("--poll", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds to wait when the queue is empty.")
@click.option("--url", envvar="PORTAL_URL", default=None,
              help="Talk to this portal over its JSON API instead of the database "
                   "(e.g. https://portal.example); needs --token.")
@click.option("--token", envvar="PORTAL_TOKEN", default=None,
              help="API token of an operator (service) account, for --url.")
def run(once, driver, delay, failure_rate, lease, poll, url, token):
    """Claim provisioning jobs and carry them out until stopped."""
    if url and not token:
        raise click.UsageError("--url needs --token (an operator's API token).")
    if token and not url:
        raise click.UsageError("--token goes with --url.")
    agent = Agent(
        HttpQueue(url, token) if url else DatabaseQueue(current_app._get_current_object()),
        DRIVERS[driver](delay=delay, failure_rate=failure_rate),
        lease_seconds=lease,
        poll_seconds=poll,
    )
    if once:
        try:
            done = agent.run_once()
        except QueueUnavailable as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"{agent.name}: {done} job(s) done.")
        return
    click.echo(f"{agent.name}: waiting for jobs (Ctrl+C to stop).")
    try:
        agent.run_forever()
    except KeyboardInterrupt:
        agent.stop()
