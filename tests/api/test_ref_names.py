"""Branch names in the API follow Git's own rules (`git check-ref-format --branch`), as in webhooks and the command line."""

import pytest


@pytest.mark.parametrize("branch", ["feat#1", "user@x", "a,b", "it's", "release/2026=q4"])
def test_trigger_accepts_branch_git_accepts(api, world, branch):
    response = api("developer", "POST", "/projects/alpha/runs", json={"branch": branch})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["branch"] == branch


@pytest.mark.parametrize("branch", ["feat#1", "user@x"])
def test_default_branch_accepts_branch_git_accepts(api, world, branch):
    response = api("admin", "PATCH", f"/projects/{world.alpha.name}", json={"default_branch": branch})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["default_branch"] == branch


@pytest.mark.parametrize("branch", ["a..b", "-x", "feature.lock", "with space"])
def test_default_branch_rejects_branch_git_rejects(api, world, branch):
    response = api("admin", "PATCH", f"/projects/{world.alpha.name}", json={"default_branch": branch})
    assert response.status_code == 422
    assert "is not a valid Git branch name" in response.get_json()["detail"]


def test_trigger_rejects_head_as_branch(api, world):
    response = api("developer", "POST", "/projects/alpha/runs", json={"branch": "HEAD"})
    assert response.status_code == 422
    assert "it is HEAD, which Git keeps for the current commit" in response.get_json()["detail"]


def test_trigger_rejects_unknown_field(api, world):
    response = api("developer", "POST", "/projects/alpha/runs", json={"sha": "HEAD"})
    assert response.status_code == 422
    assert response.get_json()["detail"] == "Unknown field 'sha': a run takes 'branch' or 'commit'."
