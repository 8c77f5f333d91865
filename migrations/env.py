import logging
from collections import Counter
from logging.config import fileConfig

from flask import current_app

from alembic import context
from sqlalchemy.engine import Connection

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
# Keep the application's loggers (and pytest's capture) working when migrations run.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger('alembic.env')


def get_engine():
    # Flask-SQLAlchemy 3: `get_engine()` is deprecated, and warnings are errors in the tests.
    return current_app.extensions['migrate'].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace(
            '%', '%%')
    except AttributeError:
        return str(get_engine().url).replace('%', '%%')


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option('sqlalchemy.url', get_engine_url())
target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def render_item(type_, obj, autogen_context):
    """Write the portal's UTCDateTime as a plain DateTime: it is one on disk."""
    from portal.core.types import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    conf_args = current_app.extensions['migrate'].configure_args
    conf_args.setdefault("compare_type", True)
    conf_args.setdefault("render_item", render_item)
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    with connectable.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode changes a SQLite table by copying it, dropping the old one and
            # renaming the copy. With foreign keys on (every portal connection turns them on),
            # that DROP deletes the rows of every table pointing at it with ON DELETE CASCADE:
            # a review found a downgrade emptying group_membership. Alembic's batch docs say
            # to turn them off for the migration; foreign_key_check below checks what they
            # would have.
            _set_sqlite_foreign_keys(connection, on=False)
        options = dict(conf_args)
        if sqlite:
            # SQLite's DDL is transactional (the portal's engine issues BEGIN itself), so all
            # the migrations run in one transaction and a failed check undoes them.
            options.setdefault("transactional_ddl", True)
        try:
            context.configure(
                connection=connection,
                target_metadata=get_metadata(),
                **options
            )

            with context.begin_transaction():
                # Rows that pointed nowhere before (edited by hand, say) are not the
                # migrations' doing: only new ones stop them.
                before = _dangling_rows(connection) if sqlite else Counter()
                context.run_migrations()
                if sqlite:
                    _check_sqlite_foreign_keys(connection, before)
        finally:
            if sqlite:
                # The connection goes back to the pool: the app's next use needs them on.
                _set_sqlite_foreign_keys(connection, on=True)


def _set_sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Turn SQLite's foreign key enforcement on or off for this connection.

    SQLite ignores the pragma inside a transaction, so it goes through the driver's own
    connection (SQLAlchemy's would begin one first); reading it back makes sure it took.
    """
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        (enforced,) = cursor.execute("PRAGMA foreign_keys").fetchone()
    finally:
        cursor.close()
    if bool(enforced) != on:
        raise RuntimeError(
            f"could not turn SQLite's foreign keys {'on' if on else 'off'} "
            "(a transaction was already open on the migration's connection)")


def _dangling_rows(connection: Connection) -> Counter:
    """How many rows of each (table, parent table) point at a row that is not there. Counted,
    not listed by row: rebuilding a table (batch mode) renumbers its rowids and foreign keys."""
    return Counter((table, parent) for table, _rowid, parent, _key
                   in connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall())


def _check_sqlite_foreign_keys(connection: Connection, before: Counter) -> None:
    """Fail, undoing the migrations, if they left more rows pointing at missing rows.

    With foreign keys off nothing stopped a migration from leaving such rows behind.
    """
    grown = _dangling_rows(connection) - before
    if grown:
        examples = "; ".join(f"{table} -> {parent}: {count}" for (table, parent), count in sorted(grown.items()))
        raise RuntimeError(
            f"the migrations left {sum(grown.values())} row(s) pointing at missing rows ({examples}); "
            "nothing was changed")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
