"""The audit log of security-relevant actions: `audit(...)` is what other code calls.

Entries are written on a connection of their own, so an entry stays even when the
request that made it rolls back or aborts (a refusal is written just before a 403).
"""

import logging

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import insert

from app.extensions import db
from app.models import AuditEntry
from app.models._columns import utcnow

log = logging.getLogger(__name__)

OUTCOMES = ("success", "failure", "denied")


def audit(action: str, *, target: str | None = None, outcome: str = "success", detail: str | None = None,
          actor=None, actor_name: str | None = None) -> None:
    """Record that `actor` (default: the current user) did `action` on `target` with `outcome`.

    Actions in use: sign_in, sign_out, password_change, user_invite, user_update, role_change,
    member_remove, token_create, token_revoke, secret_set, secret_delete, project_create,
    project_update, project_delete, run_cancel, run_rerun, run_approve, delivery_redeliver,
    notification_channel_create, notification_channel_delete, notification_rule_create,
    notification_rule_delete, pipeline_edit, deploy, environment_update, deployment_promote,
    deployment_abort, deployment_approve, deployment_rollback, and the permission actions of refusals.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r} is invalid: expected one of {', '.join(OUTCOMES)}")
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
    values = {
        "time": utcnow(), "action": action, "target": target[:300] if target else None, "outcome": outcome,
        "detail": detail, "actor_id": actor.id if actor is not None else None,
        "actor_name": actor.username if actor is not None else (actor_name or "")[:100] or None,
        "remote_addr": request.remote_addr if has_request_context() else None,
    }
    # PostgreSQL text cannot hold NUL; an injected NUL must not cost the entry.
    values = {key: value.replace("\x00", "\ufffd") if isinstance(value, str) else value for key, value in values.items()}
    with db.engine.begin() as connection:
        connection.execute(insert(AuditEntry).values(**values))
    log.info("audit: %s %s on %s by %s", action, outcome, target, values["actor_name"])
