"""Reading environments and deployments for the API and the pages."""

from sqlalchemy import select

from app.extensions import db
from app.models import Deployment, Environment, Project

HISTORY_LIMIT = 100


def environments_of(project: Project) -> list[Environment]:
    """Return the project's environments: production first, then staging, then review environments."""
    order = {"production": 0, "staging": 1, "review": 2}
    rows = db.session.scalars(select(Environment).where(Environment.project_id == project.id)).all()
    return sorted(rows, key=lambda row: (order.get(row.kind, 3), row.name))


def environment_named(project: Project, name: str) -> Environment | None:
    return db.session.scalar(select(Environment).where(Environment.project_id == project.id,
                                                       Environment.name == name))


def history(environment: Environment, limit: int = HISTORY_LIMIT) -> list[Deployment]:
    """Return the environment's deployments, newest first."""
    return db.session.scalars(select(Deployment).where(Deployment.environment_id == environment.id)
                              .order_by(Deployment.number.desc()).limit(limit)).all()


def current_deployment(environment: Environment) -> Deployment | None:
    """Return the newest deployment that has not ended, if any."""
    from app.deployments.status import TERMINAL

    return db.session.scalar(select(Deployment).where(
        Deployment.environment_id == environment.id, Deployment.status.notin_(TERMINAL))
        .order_by(Deployment.number).limit(1))
