"""The platform's tables. The schema changes only through migrations in `migrations/`."""

from app.models.forge import CommitStatusReport, ForgeAccount, WebhookDelivery
from app.models.project import Cache, Project, Schedule
from app.models.run import Artifact, LogLine, Run, Stage
from app.status import RunStatus, StageStatus
from app.models.user import Membership, Role, User

__all__ = [
    "Artifact", "Cache", "CommitStatusReport", "ForgeAccount", "LogLine", "Membership", "Project", "Role", "Run", "RunStatus",
    "Schedule", "Stage", "StageStatus", "User", "WebhookDelivery",
]
