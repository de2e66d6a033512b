"""Release folders over SSH against a real sshd on 127.0.0.1."""

import io
import paramiko
import pytest

from app.deployments import requests as deployment_requests
from app.deployments.adapters.base import AdapterError
from app.deployments.adapters.release_folders import SshReleaseFolders
from app.deployments.status import DeploymentStatus
from tests.deployments.servers import measure_split


def _use_ssh(target: dict, sshd, private_key: str, deploy, drive, project):
    """Deploy v0 over SSH; return the SSH target and that deployment."""
    ssh_target = {**target, "releases": sshd.settings()}
    environment = deployment_requests.ensure_environment(project, "production", target=ssh_target)
    deployment_requests.set_credentials(environment, {"private_key": private_key})
    return ssh_target, drive(deploy(ssh_target, "v0").id)


def test_canary_over_ssh_switches_current_link(nginx_target, sshd, deploy, drive, project):
    ssh_target, first = _use_ssh(nginx_target, sshd, sshd.private_key, deploy, drive, project)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 40}]}}

    second = drive(deploy(ssh_target, "v1", spec).id)

    assert first.status == DeploymentStatus.SUCCEEDED, first.status_reason
    assert second.status == DeploymentStatus.SUCCEEDED, second.status_reason
    assert [event.split for event in second.events.filter_by(kind="traffic")] == [
        {"v0": 100}, {"v0": 60, "v1": 40}, {"v1": 100}]
    assert measure_split(nginx_target["public_url"], 50) == {"v1": 50}


def test_wrong_key_fails_and_live_keeps_serving(nginx_target, sshd, deploy, drive, project):
    ssh_target, first = _use_ssh(nginx_target, sshd, sshd.private_key, deploy, drive, project)
    buffer = io.StringIO()
    paramiko.ECDSAKey.generate().write_private_key(buffer)
    deployment_requests.set_credentials(first.environment, {"private_key": buffer.getvalue()})

    deployment = drive(deploy(ssh_target, "v1").id)

    assert deployment.status == DeploymentStatus.FAILED
    assert "the server rejected the key" in deployment.status_reason
    assert "PRIVATE KEY" not in deployment.status_reason
    assert measure_split(nginx_target["public_url"], 50) == {"v0": 50}


def test_wrong_host_key_is_rejected(sshd):
    other = paramiko.Ed25519Key.from_private_key(io.StringIO(sshd.private_key))
    folders = SshReleaseFolders({**sshd.settings(), "host_key": f"ssh-ed25519 {other.get_base64()}"},
                                {"private_key": sshd.private_key})

    with pytest.raises(AdapterError, match="its host key does not match the configured one"):
        folders.current("/tmp")
