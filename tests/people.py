"""A small world for access tests: two projects, one user per role, runs and log lines made directly in the database."""

from dataclasses import dataclass

import pytest

from app.auth.passwords import hash_password

PASSWORD = "correct horse battery"
# Hashing once keeps the many parametrized cases fast; argon2 is slow on purpose.
PASSWORD_HASH = hash_password(PASSWORD)
ROLES = ("anonymous", "viewer", "developer", "project_admin", "outsider", "admin")


@dataclass
class World:
    alpha: object
    beta: object
    users: dict
    run: object
    stage: object

    def token(self, role: str, scope: str = "admin") -> str:
        from app.auth.tokens import create_token

        return create_token(self.users[role], f"{role}-{scope}", scope)[1]


def make_run(project, number: int = 1, status: str = "running", **fields):
    from app.extensions import db
    from app.models import Run

    run = Run(project_id=project.id, number=number, trigger="api", event=fields.pop("event", "push"),
              branch=fields.pop("branch", "main"), status=status, event_data=fields.pop("event_data", {}), **fields)
    db.session.add(run)
    db.session.commit()
    return run


def make_stage(run, name: str = "test", **fields):
    from app.extensions import db
    from app.models import Stage

    stage = Stage(run_id=run.id, name=name, position=fields.pop("position", 0), status=fields.pop("status", "running"), **fields)
    db.session.add(stage)
    db.session.commit()
    return stage


def add_lines(run, stage, texts, stream: str = "stdout"):
    from app.extensions import db
    from app.models._columns import utcnow
    from app.runs.logs import PendingLine, store_lines

    return store_lines(db.engine, run.id, stage.id if stage else None, [PendingLine(stream, text, utcnow()) for text in texts])


@pytest.fixture(autouse=True)
def clear_sign_in_limits(db_app):
    from app.queue import redis_connection

    connection = redis_connection()
    for key in connection.scan_iter("deno-ci:sign-in-failures:*"):
        connection.delete(key)


@pytest.fixture
def world(db_app, admin) -> World:
    from app.extensions import db
    from app.models import Membership, Project, User

    alpha = Project(name="alpha", clone_url="/srv/git/alpha")
    beta = Project(name="beta", clone_url="/srv/git/beta")
    db.session.add_all([alpha, beta])
    users = {"admin": admin}
    for role in ("viewer", "developer", "project_admin", "outsider"):
        users[role] = User(username=role, password_hash=PASSWORD_HASH)
        db.session.add(users[role])
    db.session.flush()
    for role, project, project_role in (("viewer", alpha, "viewer"), ("developer", alpha, "developer"),
                                        ("project_admin", alpha, "admin"), ("outsider", beta, "developer")):
        db.session.add(Membership(user_id=users[role].id, project_id=project.id, role=project_role))
    db.session.commit()
    run = make_run(alpha)
    stage = make_stage(run)
    return World(alpha, beta, users, run, stage)


def sign_in(app, username: str, password: str = PASSWORD):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def client_for(app, world: World, role: str):
    """Return a test client with the session of `role` (anonymous: none), without the slow sign-in form."""
    client = app.test_client()
    if role != "anonymous":
        with client.session_transaction() as session:
            session["_user_id"] = str(world.users[role].id)
            session["_fresh"] = True
    return client
