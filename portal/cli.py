"""Command line: `flask --app wsgi users create …`, `flask --app wsgi seed demo`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.auth import service as accounts
from portal.auth import tokens
from portal.extensions import db

users_cli = AppGroup("users", help="Manage login accounts and API tokens.")
seed_cli = AppGroup("seed", help="Load demo or benchmark data.")


@users_cli.command("create")
@click.argument("name")
@click.option("--password", required=True,
              help="At least 12 characters, not a common password, not the username.")
@click.option("--operator", is_flag=True, help="Full rights over the whole estate.")
@click.option("--tenant", "tenants", multiple=True, help="Make the user admin of this tenant.")
@click.option("--maintainer", "maintainer", default=None, help="Link to this maintainer account.")
@click.option("--token", is_flag=True, help="Also create an API token and print it.")
@click.option("--display-name", default="", help="Name shown in the portal.")
def create_user(name, password, operator, tenants, maintainer, token, display_name):
    """Create the login account NAME."""
    try:
        user = accounts.create_user(
            name,
            password,
            display_name=display_name,
            operator=operator,
            tenants=tuple(tenants),
            maintainer_account=maintainer,
        )
        issued = (
            tokens.issue_token(user, "cli", scopes=[tokens.cli_scope(user)]) if token else None
        )
        db.session.commit()
    except accounts.AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    click.echo(f"Created user {user.username}.")
    if issued is not None:
        click.echo(issued.secret)


@seed_cli.command("demo")
@click.option("--if-empty", is_flag=True, help="Only when the database holds no users yet.")
def seed_demo(if_empty):
    """The small demo estate, with one login per role. Running it twice changes nothing."""
    from sqlalchemy import select

    from portal.models import User
    from portal.seed.demo import seed_demo as run

    if if_empty and db.session.scalar(select(User.id).limit(1)) is not None:
        click.echo("The database already has data; not seeding.")
        return
    click.echo(run())


@seed_cli.command("dataset")
@click.option("--size", "size", type=click.Choice(["S", "M", "L"]), required=True,
              help="S, M or L (L: 10,000 servers, 100,000 VMs).")
def seed_dataset(size):
    """A benchmark estate (SPEC section 7) in an empty database."""
    import time

    from portal.seed.dataset import DatasetError
    from portal.seed.dataset import seed_dataset as run

    started = time.perf_counter()
    try:
        report = run(size)
    except DatasetError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    click.echo(f"{report} ({time.perf_counter() - started:.1f} s)")
