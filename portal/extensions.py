"""Flask extensions, created unbound and initialised in create_app()."""

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names: Alembic needs them to alter constraints on SQLite, and
# they make IntegrityErrors readable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def begin_write() -> None:
    """Start the session's transaction as a writer, before it reads anything.

    PostgreSQL needs nothing here: its row locks (SELECT … FOR UPDATE) do the work. SQLite
    has no row locks, and a transaction that read first and writes later fails at once with
    "database is locked" if another writer committed meanwhile. A first write that touches
    no row makes this transaction the database's only writer (others wait on busy_timeout),
    which serialises the decisions that must not interleave: reservations, job claims."""
    from sqlalchemy import text

    if db.session.get_bind().dialect.name == "sqlite":
        if db.session().in_transaction():
            db.session.rollback()
        db.session.execute(text("UPDATE baremetal_group SET id = id WHERE 0"))
