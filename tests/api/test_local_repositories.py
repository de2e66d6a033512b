"""Only administrators connect repositories on the server's file system, and nobody points into the data folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import current_app

from app.projects import add_project
from tests.conftest import ROOT
from tests.people import client_for


@pytest.mark.parametrize("clone_url", ["/srv/git/other-team", "file:///srv/git/other-team", "FILE:/srv/git/other-team"])
def test_developer_cannot_connect_local_path(api, clone_url):
    response = api("developer", "POST", "/projects", json={"name": "hijack", "clone_url": clone_url})
    assert response.status_code == 403
    assert "Only administrators" in response.get_json()["detail"]


def test_developer_connects_remote_repository(api):
    response = api("developer", "POST", "/projects", json={"name": "remote", "clone_url": "https://git.example.com/team/app.git"})
    assert response.status_code == 201


def test_project_admin_cannot_move_project_to_local_path(api, world):
    response = api("project_admin", "PATCH", f"/projects/{world.alpha.name}", json={"clone_url": "/srv/git/other-team"})
    assert response.status_code == 403


def test_nobody_points_into_data_folder(api):
    mirror = Path(current_app.config["DATA_DIR"]) / "mirrors" / "1.git"
    response = api("admin", "POST", "/projects", json={"name": "mirror", "clone_url": str(mirror)})
    assert response.status_code == 422
    assert "data folder" in response.get_json()["detail"]


def test_command_line_points_not_into_data_folder(db_app):
    mirror = Path(current_app.config["DATA_DIR"]) / "mirrors" / "1.git"
    result = subprocess.run([sys.executable, "-m", "app.cli", "project", "add", "mirror", "--repo", str(mirror)],
                            cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "is inside the platform's data folder" in result.stderr


@pytest.mark.parametrize("clone_url", ["ssh://-oProxyCommand=touch%20/tmp/x/repo", "ssh://git@-oProxyCommand=x/repo",
                                       "-oProxy@host:repo"])
def test_host_like_an_option_is_refused(api, clone_url):
    response = api("developer", "POST", "/projects", json={"name": "option", "clone_url": clone_url})
    assert response.status_code == 422
    assert "starts with '-'" in response.get_json()["detail"]


def test_admin_connects_local_path(api, make_repo):
    repo = make_repo({"deno-pipeline.ts": "export default 1;\n"})
    response = api("admin", "POST", "/projects", json={"name": "local", "clone_url": str(repo)})
    assert response.status_code == 201


def test_local_path_without_repository_is_refused(api, tmp_path):
    missing = api("admin", "POST", "/projects", json={"name": "missing", "clone_url": str(tmp_path / "gone")})
    assert missing.status_code == 422
    assert "not found; give the path of an existing git repository" in missing.get_json()["detail"]
    plain = api("admin", "POST", "/projects", json={"name": "plain", "clone_url": str(tmp_path)})
    assert plain.status_code == 422
    assert "is not a git repository" in plain.get_json()["detail"]


def test_command_line_refuses_folder_without_repository(db_app, tmp_path):
    result = subprocess.run([sys.executable, "-m", "app.cli", "project", "add", "plain", "--repo", str(tmp_path)],
                            cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "is not a git repository" in result.stderr


def test_only_admin_saves_into_local_repository(db_app, world, make_repo):
    repo = make_repo({"deno-pipeline.ts": "export default 1;\n"})
    project = add_project("on-disk", str(repo))
    from app.extensions import db
    from app.models import Membership, Role

    db.session.add(Membership(user_id=world.users["developer"].id, project_id=project.id, role=Role.ADMIN))
    db.session.commit()
    before = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout

    response = client_for(db_app, world, "developer").post(
        "/projects/on-disk/editor/save", json={"text": "export default 2;\n", "branch": "main", "message": "edit"})

    assert response.status_code == 403
    assert "Only administrators" in response.get_json()["detail"]
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout == before
    from sqlalchemy import select

    from app.models import AuditEntry

    (entry,) = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "pipeline_save")).all()
    assert entry.outcome == "failure"


def test_folder_inside_repository_names_its_top(api, make_repo):
    repo = make_repo({"deno-pipeline.ts": "export default 1;\n", "sub/file.txt": "x"})
    response = api("admin", "POST", "/projects", json={"name": "inner", "clone_url": str(repo / "sub")})
    assert response.status_code == 422
    assert f"inside the repository at {str(repo)!r}" in response.get_json()["detail"]


@pytest.mark.parametrize("clone_url", ["fd::3", "ext::true", "foo::bar", "my-helper.v2::host:repo"])
def test_remote_helper_address_rejected(api, clone_url):
    response = api("developer", "POST", "/projects", json={"name": "helper", "clone_url": clone_url})
    assert response.status_code == 422
    assert "remote helper" in response.get_json()["detail"]
