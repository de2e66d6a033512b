"""The platform's tables. The schema changes only through migrations in `migrations/`."""

from app.models.deployment import Deployment, DeploymentApproval, DeploymentEvent, Environment, Release
from app.models.auth import ApiToken, AuditEntry
from app.models.forge import CommitStatusReport, ForgeAccount, WebhookDelivery
from app.models.project import Cache, Project, Schedule
from app.models.notification import (
    AttemptOutcome, DeliveryAttempt, DeliveryStatus, NotificationChannel, NotificationDelivery, NotificationPreference,
    NotificationRule,
)
from app.models.run import Artifact, LogLine, Run, Stage
from app.models.test_report import StageTestCase, StageTestReport, CaseOutcome
from app.status import RunStatus, StageStatus
from app.models.secret import ProjectSecret
from app.models.user import Membership, Role, User

__all__ = [
    "ApiToken", "Artifact", "AttemptOutcome", "AuditEntry", "Cache", "CommitStatusReport", "DeliveryAttempt",
    "DeliveryStatus", "Deployment", "DeploymentApproval", "DeploymentEvent", "Environment", "ForgeAccount", "LogLine",
    "Membership", "NotificationChannel", "NotificationDelivery", "NotificationPreference", "NotificationRule", "Project",
    "ProjectSecret", "Release", "Role", "Run", "RunStatus", "Schedule", "Stage", "StageStatus", "StageTestCase",
    "StageTestReport", "CaseOutcome", "User", "WebhookDelivery",
]
