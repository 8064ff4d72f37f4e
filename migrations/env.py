"""Alembic environment, run through Flask-Migrate (`flask --app wsgi db …`)."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from portal.models.ddl import outside_metadata

config = context.config
if config.config_file_name and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

db = current_app.extensions["migrate"].db
# Behind a transaction-mode pooler the application's URL is PgBouncer; migrations go to
# PostgreSQL itself (portal.config: PORTAL_MIGRATION_DATABASE_URL).
direct_url = current_app.config.get("PORTAL_MIGRATION_DATABASE_URL")
url = make_url(direct_url) if direct_url else db.engine.url
config.set_main_option(
    "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
)


def include_object(obj, name, type_, reflected, compare_to):
    # Triggers, the rack exclusion and trigram indexes come from portal.models.ddl.
    return not outside_metadata(type_, name)


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=db.metadata,
        literal_binds=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        # No empty revision when autogenerate finds nothing to do.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("compare_type", True)
    engine = create_engine(direct_url, poolclass=NullPool) if direct_url else db.engine
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            include_object=include_object,
            **conf_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
