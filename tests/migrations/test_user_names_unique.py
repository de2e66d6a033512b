"""Migration 0045, run on a database of its own: it stops on names differing only in case, else adds the index."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from tests.conftest import ROOT

MIGRATIONS = str(ROOT / "migrations")
SCRATCH_DATABASE = "denoci_migration_0045"


@pytest.fixture
def scratch_app(app):
    """An app on a new, empty database of the session's PostgreSQL, dropped afterwards."""
    from app.extensions import db
    from app.factory import create_app

    with app.app_context():
        server = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(database=SCRATCH_DATABASE)
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DATABASE}"))
        connection.execute(text(f"CREATE DATABASE {SCRATCH_DATABASE}"))
    scratch = create_app({"TESTING": True, "DATABASE_URL": url.render_as_string(hide_password=False)})
    with scratch.app_context():
        upgrade(directory=MIGRATIONS, revision="0044")
        yield scratch
        db.session.remove()
        db.engine.dispose()
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE {SCRATCH_DATABASE}"))


def _add_users(*names: str) -> None:
    from app.extensions import db

    for name in names:
        db.session.execute(text("INSERT INTO users (username, is_admin, active, created_at) VALUES (:name, false, true, now())"),
                           {"name": name})
    db.session.commit()


def test_names_differing_in_case_stop_migration(scratch_app, caplog):
    from app.extensions import db

    _add_users("bob", "Bob", "carol", "ann", "ANN", "Ann")
    # Flask-Migrate logs the migration's RuntimeError at ERROR level and exits with status 1.
    with pytest.raises(SystemExit):
        upgrade(directory=MIGRATIONS, revision="0045")
    (message,) = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert "4 'ann', 5 'ANN', 6 'Ann'; 1 'bob', 2 'Bob'" in message
    assert "carol" not in message
    assert "Rename or delete all but one of each group" in message
    db.session.remove()
    assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == "0044"


def test_migration_adds_index_once_names_differ(scratch_app):
    from app.extensions import db

    _add_users("bob", "carol")
    upgrade(directory=MIGRATIONS, revision="0045")
    with pytest.raises(IntegrityError):
        _add_users("BOB")
    db.session.rollback()
    downgrade(directory=MIGRATIONS, revision="0044")
    _add_users("BOB")
    assert db.session.scalar(text("SELECT count(*) FROM users WHERE lower(username) = 'bob'")) == 2
