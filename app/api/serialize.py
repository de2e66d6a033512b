"""JSON shapes of the API's resources."""

from datetime import datetime

from app.models import Artifact, Project, Run, Stage
from app.status import stage_label


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def project_json(project: Project) -> dict:
    return {
        "id": project.id, "name": project.name, "forge": project.forge, "forge_repo": project.forge_repo,
        "clone_url": project.clone_url, "default_branch": project.default_branch, "pipeline_path": project.pipeline_path,
    }


def stage_json(stage: Stage) -> dict:
    return {
        "id": stage.id, "name": stage.name, "position": stage.position, "needs": stage.needs, "status": stage.status,
        "state": stage_label(stage.status, stage.waiting_for), "waiting_for": stage.waiting_for,
        "deployment_id": stage.deployment_id,
        "attempt": stage.attempt, "exit_code": stage.exit_code, "error": stage.error,
        "allow_failure": bool(stage.options.get("allowFailure")),
        "queued_at": _time(stage.enqueued_at), "started_at": _time(stage.started_at),
        "finished_at": _time(stage.finished_at), "duration": _seconds(stage.started_at, stage.finished_at),
    }


def artifact_json(artifact: Artifact) -> dict:
    return {"name": artifact.name, "size": artifact.size, "created_at": _time(artifact.created_at),
            "expires_at": _time(artifact.expires_at), "url": f"/api/v1/runs/{artifact.run_id}/artifacts/{artifact.name}"}


def run_json(run: Run, with_stages: bool = True) -> dict:
    document = {
        "id": run.id, "project": run.project.name, "number": run.number, "trigger": run.trigger, "event": run.event,
        "ref": run.ref, "branch": run.branch, "tag": run.tag, "commit": run.commit_sha, "pull_request": run.pull_request,
        "author": run.author, "message": run.message, "status": run.status, "status_reason": run.status_reason,
        "queued_at": _time(run.queued_at), "started_at": _time(run.started_at), "finished_at": _time(run.finished_at),
        "duration": _seconds(run.started_at, run.finished_at), "url": f"/runs/{run.id}",
    }
    if with_stages:
        document["stages"] = [stage_json(stage) for stage in run.stages]
    return document


def user_json(user) -> dict:
    return {"id": user.id, "username": user.username, "email": user.email, "is_admin": user.is_admin,
            "active": user.active, "created_at": _time(user.created_at)}


def member_json(membership, user) -> dict:
    return {"username": user.username, "user_id": user.id, "role": membership.role}


def secret_json(secret) -> dict:
    return {"name": secret.name, "created_at": _time(secret.created_at), "updated_at": _time(secret.updated_at),
            "updated_by": secret.updated_by}


def token_json(token) -> dict:
    from app.auth.tokens import token_state

    return {"id": token.id, "name": token.name, "user": token.user.username, "scope": token.scope, "prefix": token.prefix,
            "state": token_state(token), "created_at": _time(token.created_at), "expires_at": _time(token.expires_at),
            "last_used_at": _time(token.last_used_at), "revoked_at": _time(token.revoked_at)}


def audit_json(entry) -> dict:
    return {"id": entry.id, "time": _time(entry.time), "actor": entry.actor_name, "actor_id": entry.actor_id,
            "action": entry.action, "target": entry.target, "outcome": entry.outcome, "detail": entry.detail,
            "remote_addr": entry.remote_addr}


def release_json(release) -> dict | None:
    if release is None:
        return None
    return {"id": release.id, "name": release.name, "artifact": release.artifact, "commit": release.commit_sha,
            "run_id": release.run_id, "created_at": _time(release.created_at)}


def deployment_json(deployment, with_events: bool = False) -> dict:
    document = {
        "id": deployment.id, "number": deployment.number, "environment": deployment.environment.name,
        "project": deployment.environment.project.name, "status": deployment.status,
        "reason": deployment.status_reason, "release": release_json(deployment.release),
        "stable_release": release_json(deployment.stable_release), "rollback_of": deployment.rollback_of_id,
        "run_id": deployment.run_id, "requested_by": deployment.requested_by, "weight": deployment.weight,
        "split": deployment.split, "step": deployment.step_index, "steps": deployment.steps,
        "strategy": (deployment.spec or {}).get("strategy") or {"type": "allAtOnce"},
        "approvals": [{"gate": approval.gate, "user": approval.user.username, "at": _time(approval.created_at)}
                      for approval in deployment.approvals],
        "created_at": _time(deployment.created_at), "started_at": _time(deployment.started_at),
        "finished_at": _time(deployment.finished_at),
    }
    if with_events:
        document["events"] = [
            {"time": _time(event.time), "kind": event.kind, "status": event.status, "step": event.step_index,
             "weight": event.weight, "split": event.split, "message": event.message, "details": event.details}
            for event in deployment.events]
    return document


def environment_json(environment) -> dict:
    live = environment.live_deployment
    return {
        "id": environment.id, "name": environment.name, "kind": environment.kind,
        "pull_request": environment.pull_request, "target": environment.target,
        "has_credentials": environment.credentials_encrypted is not None,
        "live": None if live is None else {
            "deployment": live.id, "release": release_json(live.release), "deployed_by": live.requested_by,
            "deployed_at": _time(live.finished_at)},
    }
