"""Connecting repositories as projects."""

import re

from sqlalchemy import select

from app.extensions import db
from app.models import Project

VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ProjectError(ValueError):
    """A project could not be added; the message names the value and the rule."""


def add_project(name: str, clone_url: str, default_branch: str = "main", pipeline_path: str = "deno-pipeline.ts",
                forge: str = "git", forge_repo: str | None = None) -> Project:
    """Record a new project; raise ProjectError for an invalid or taken name."""
    if not VALID_NAME.match(name):
        raise ProjectError(f"Project name {name!r} is invalid: use up to 100 letters, digits, '.', '_' and '-'.")
    if db.session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ProjectError(f"Project {name!r} exists already. Choose another name.")
    if pipeline_path.startswith("/") or ".." in pipeline_path.split("/"):
        raise ProjectError(f"Pipeline path {pipeline_path!r} must be relative to the repository root.")
    project = Project(name=name, clone_url=clone_url, default_branch=default_branch, pipeline_path=pipeline_path,
                      forge=forge, forge_repo=forge_repo)
    db.session.add(project)
    db.session.commit()
    return project
