"""Local accounts: user names are unique regardless of case, in the database too."""

import pytest
from sqlalchemy.exc import IntegrityError

from app.auth import accounts
from app.auth.accounts import UserExistsError, invite_user
from app.extensions import db
from app.models import User


def test_database_rejects_look_alike_name(db_app, world):
    db.session.add(User(username="Viewer"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_invitation_losing_race_is_conflict(db_app, world, monkeypatch):
    real_find_user, calls = accounts.find_user, []

    def find_user_late(username):
        # The first check misses "viewer", as if a concurrent request created it between this check and the insert.
        calls.append(username)
        return None if len(calls) == 1 else real_find_user(username)

    monkeypatch.setattr(accounts, "find_user", find_user_late)
    with pytest.raises(UserExistsError, match="taken by user 'viewer'"):
        invite_user("VIEWER")
    assert len(calls) == 2
    assert accounts.find_user("VIEWER").username == "viewer"
    assert db.session.query(User).filter(User.username == "VIEWER").count() == 0
