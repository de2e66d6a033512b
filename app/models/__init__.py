"""The platform's tables. The schema changes only through migrations in `migrations/`."""

from app.models.deployment import Deployment, DeploymentApproval, DeploymentEvent, Environment, Release
from app.models.forge import CommitStatusReport, ForgeAccount, WebhookDelivery
from app.models.project import Cache, Project, Schedule
from app.models.notification import (
    AttemptOutcome, DeliveryAttempt, DeliveryStatus, NotificationChannel, NotificationDelivery, NotificationPreference,
    NotificationRule,
)
from app.models.run import Artifact, LogLine, Run, Stage
from app.status import RunStatus, StageStatus
from app.models.user import Membership, Role, User

__all__ = [
    "Artifact", "AttemptOutcome", "Cache", "CommitStatusReport", "DeliveryAttempt", "DeliveryStatus", "Deployment",
    "DeploymentApproval", "DeploymentEvent", "Environment", "ForgeAccount", "Release",
    "LogLine", "Membership", "NotificationChannel", "NotificationDelivery", "NotificationPreference", "NotificationRule",
    "Project", "Role", "Run", "RunStatus", "Schedule", "Stage", "StageStatus", "User", "WebhookDelivery",
]
