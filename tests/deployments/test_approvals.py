"""Approval gates before deploying and before promoting: role, count and no self-approval."""

import pytest

from app.deployments import requests as deployment_requests
from app.deployments.requests import ApprovalError, DeploymentConflictError
from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Membership, Role, User

GATED = {"strategy": {"type": "canary", "steps": [{"setWeight": 50}]},
         "approvals": {"beforeDeploy": {"role": "developer", "count": 2},
                       "beforePromote": {"role": "admin", "count": 1}}}


@pytest.fixture
def people(project):
    """alice requests; bob is a viewer; carol and dan are developers; erin is an administrator."""
    users = {}
    for name, role in (("alice", Role.DEVELOPER), ("bob", Role.VIEWER), ("carol", Role.DEVELOPER),
                       ("dan", Role.DEVELOPER), ("erin", None)):
        user = User(username=name, is_admin=role is None)
        db.session.add(user)
        db.session.flush()
        if role:
            db.session.add(Membership(user_id=user.id, project_id=project.id, role=role))
        users[name] = user
    db.session.commit()
    return users


def test_gates_hold_until_enough_reviewers_approve(nginx_target, deploy, drive, people):
    drive(deploy(nginx_target, "v1").id)
    deployment = drive(deploy(nginx_target, "v2", GATED, user=people["alice"]).id)
    assert deployment.status == DeploymentStatus.WAITING_FOR_APPROVAL
    assert "Waiting for 2 approval(s) to deploy from reviewers with the role developer" in deployment.status_reason

    deployment_requests.approve(deployment, people["carol"])
    deployment = drive(deployment.id)
    assert deployment.status == DeploymentStatus.WAITING_FOR_APPROVAL
    assert "(1 so far)" in deployment.status_reason

    deployment_requests.approve(deployment, people["dan"])
    deployment = drive(deployment.id)
    assert deployment.status == DeploymentStatus.PAUSED
    assert deployment.weight == 50
    assert "to promote from reviewers with the role admin" in deployment.status_reason

    deployment_requests.approve(deployment, people["erin"])
    assert drive(deployment.id).status == DeploymentStatus.SUCCEEDED


@pytest.mark.parametrize(("name", "message"), [
    ("alice", "'alice' requested deployment 2, so cannot approve it"),
    ("bob", "needs the role developer or above; 'bob' has viewer"),
])
def test_approval_refused(nginx_target, deploy, drive, people, name, message):
    drive(deploy(nginx_target, "v1").id)
    deployment = drive(deploy(nginx_target, "v2", GATED, user=people["alice"]).id)

    with pytest.raises(ApprovalError, match=message):
        deployment_requests.approve(deployment, people[name])

    assert deployment.approvals == []


def test_developer_cannot_pass_admin_gate(nginx_target, deploy, drive, people):
    spec = {**GATED, "approvals": {"beforePromote": {"role": "admin"}}}
    drive(deploy(nginx_target, "v1").id)
    deployment = drive(deploy(nginx_target, "v2", spec, user=people["alice"]).id)

    with pytest.raises(ApprovalError, match="needs the role admin or above; 'carol' has developer"):
        deployment_requests.approve(deployment, people["carol"])


def test_approving_without_gate_conflicts(nginx_target, deploy, drive, people):
    deployment = drive(deploy(nginx_target, "v1").id)

    with pytest.raises(DeploymentConflictError, match="waits for no approval"):
        deployment_requests.approve(deployment, people["erin"])


def test_invalid_approval_rule_fails_deployment(nginx_target, deploy):
    spec = {"approvals": {"beforeDeploy": {"role": "owner", "count": 0}}}

    deployment = deploy(nginx_target, "v1", spec)

    assert deployment.status == DeploymentStatus.FAILED
    assert "Approval gate 'beforeDeploy' needs a role among admin, developer, viewer" in deployment.status_reason
