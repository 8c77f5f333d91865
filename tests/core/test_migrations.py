"""The schema comes from migrations alone, and the migrations produce exactly the models."""
from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from config import TestingConfig, database_url as normalize_url
from portal import create_app
from portal.admin.demo import seed_demo
from portal.extensions import db
from portal.people.services import seed_sectors
from tests.conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    server = make_url(normalize_url(os.environ["PORTAL_TEST_DATABASE_URL"]))
    name = f"portal_migrations_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _app_on(database: str, instance: Path) -> Flask:
    """The testing app on this database, with nothing made in it yet."""
    app = create_app({**{k: getattr(TestingConfig, k) for k in dir(TestingConfig) if k.isupper()},
                      "SQLALCHEMY_DATABASE_URI": database,
                      "PORTAL_INSTANCE_PATH": str(instance)})
    app.instance_path = str(instance)
    return app


def _row_counts() -> dict[str, int]:
    with db.engine.connect() as connection:
        return {name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in inspect(connection).get_table_names()}


def test_migrations_produce_exactly_the_models_schema(empty_database, tmp_path):
    app = _app_on(empty_database, tmp_path)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == [], differences
        # The sectors are seeded by the migrations, so a new install has them.
        count = db.session.execute(text("SELECT count(*) FROM sector")).scalar_one()
        assert count == 11
        db.session.remove()
        downgrade(revision="base")
        with db.engine.connect() as connection:
            remaining = set(db.inspect(connection).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        for engine in db.engines.values():
            engine.dispose()


#: Far enough back that the downgrade rebuilds (copy, drop, rename) event, event_question,
#: copy_request, working_group, subscription, list_post and registration on SQLite, and not
#: so far that it drops a table.
REBUILDING_DOWNGRADE_TARGET = "e4a7c2d91f05"


def test_sqlite_table_rebuilds_keep_the_rows_of_the_tables_pointing_at_them(tmp_path):
    app = _app_on(f"sqlite:///{tmp_path / 'demo.sqlite3'}", tmp_path)
    with app.app_context():
        upgrade()
        seed_demo()
        db.session.remove()
        seeded = _row_counts()
        # The demo fills the tables that cascade from the rebuilt ones.
        for child in ("registration", "group_membership", "event_question", "subscription",
                      "access_token", "outbox_message", "working_group_sector", "list_post"):
            assert seeded[child] > 0, child

        downgrade(revision=REBUILDING_DOWNGRADE_TARGET)
        assert _row_counts() == seeded
        upgrade()
        assert _row_counts() == seeded

        with db.engine.connect() as connection:
            # The pooled connection the migrations used enforces foreign keys again.
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        for engine in db.engines.values():
            engine.dispose()


def test_sqlite_migrations_that_would_leave_a_row_pointing_nowhere_change_nothing(tmp_path, capsys):
    """A migration run with foreign keys off could leave rows pointing nowhere: here one that
    does (on top of the real ones, in a copy of the migrations) is refused and undone. A row
    that pointed nowhere before (edited by hand, say) is not the migrations' doing: it does
    not stop an upgrade (or `make run`, which upgrades every time)."""
    import shutil

    migrations = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", migrations, ignore=shutil.ignore_patterns("__pycache__"))
    scripts = AlembicConfig()
    scripts.set_main_option("script_location", str(migrations))
    head = ScriptDirectory.from_config(scripts).get_current_head()
    (migrations / "versions" / "ffff00000001_leaves_a_row_pointing_nowhere.py").write_text(
        f'revision = "ffff00000001"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n'
        "from alembic import op\n\n\ndef upgrade():\n"
        '    op.execute("INSERT INTO working_group_sector (group_id, sector_id) VALUES (999, 1)")\n\n\n'
        "def downgrade():\n    pass\n")
    path = tmp_path / "dangling.sqlite3"
    app = _app_on(f"sqlite:///{path}", tmp_path)
    with app.app_context():
        upgrade(directory=str(migrations), revision=head)
        seed_sectors()
        db.session.commit()
        db.session.remove()
        with pytest.raises(SystemExit):  # `flask db upgrade` exits 1 with the error's line
            upgrade(directory=str(migrations))
        assert "1 row(s) pointing at missing rows (working_group_sector -> working_group: 1)" in capsys.readouterr().err
        with db.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert version == head  # undone
            assert connection.execute(text("SELECT count(*) FROM working_group_sector")).scalar_one() == 0

        # The same row, put there by hand before: an upgrade goes ahead and leaves it be, even
        # one that rebuilds its table (which renumbers rows and foreign keys).
        (migrations / "versions" / "ffff00000001_leaves_a_row_pointing_nowhere.py").write_text(
            f'revision = "ffff00000001"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade():\n"
            '    with op.batch_alter_table("working_group_sector") as batch:\n'
            '        batch.add_column(sa.Column("added_by_id", sa.Integer, nullable=True))\n'
            '        batch.create_foreign_key("fk_wgs_added_by", "person", ["added_by_id"], ["id"])\n\n\n'
            "def downgrade():\n    pass\n")
        raw = sqlite3.connect(path)
        raw.execute("INSERT INTO working_group_sector (group_id, sector_id) VALUES (998, 1)")
        raw.commit()
        raw.close()
        upgrade(directory=str(migrations))
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "ffff00000001"
            assert connection.execute(text("SELECT count(*) FROM working_group_sector")).scalar_one() == 1
        for engine in db.engines.values():
            engine.dispose()


def test_a_long_encoded_recipient_survives_the_outbox_widening_both_ways(empty_database, tmp_path):
    """Upgraded, the outbox holds a 200-letter CJK name's To: value; downgraded, a value too
    long for the old column keeps its bare address, still deliverable."""
    from email.utils import formataddr

    from portal.core.clock import now
    from portal.mail.models import OutboxMessage

    app = _app_on(empty_database, tmp_path)
    long_recipient = formataddr(("漢" * 200, "ada@example.ca"))
    with app.app_context():
        upgrade()
        db.session.execute(OutboxMessage.__table__.insert().values(
            idempotency_key="k", purpose="events.confirmation", to_address=long_recipient,
            from_address="Portal <no-reply@example.ca>", subject="s", body_text="b", message_id="<m@example.ca>",
            headers={}, next_attempt_at=now(), created_at=now()))
        db.session.commit()
        db.session.remove()

        downgrade(revision="c6e1a8f3d2b7")  # the revision before the widening
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT to_address, from_address FROM outbox_message")).one() == (
                "ada@example.ca", "Portal <no-reply@example.ca>")
        upgrade()
        for engine in db.engines.values():
            engine.dispose()
