import pytest

from tests.people import clear_sign_in_limits, world  # noqa: F401  (fixtures)


@pytest.fixture
def api(db_app, world):  # noqa: F811
    """Call the API as a role with an admin-scope token: api("viewer", "GET", path, json=...)."""
    client = db_app.test_client()
    tokens = {}

    def call(role: str, method: str, path: str, **kwargs):
        if role not in tokens:
            tokens[role] = world.token(role)
        return client.open(f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {tokens[role]}"}, **kwargs)

    return call

