"""The docker executor without an engine: argument translation and the missing-engine error."""

import os
from pathlib import Path

import pytest

from jobs.executor import ExecutorUnavailableError, Mount, StageSpec, get_executor
from jobs.executor.docker import CONTROL_FOLDER, DEFAULT_IMAGE, DockerExecutor, container_options


@pytest.fixture
def spec(workspace, tmp_path):
    return StageSpec(
        argv=["deno", "task", "test"],
        workspace=workspace,
        env={"DENO_CI_RUN": "42", "DENO_CI_STAGE": "test", "DENO_DIR": "/cache/deno"},
        network=False,
        max_processes=64,
        mounts=(Mount(tmp_path, writable=False),),
    )


def test_options_map_workspace_and_mounts(spec, workspace, tmp_path):
    options = container_options(spec, DEFAULT_IMAGE, Path("/control"))
    assert options["volumes"][str(workspace)] == {"bind": str(workspace), "mode": "rw"}
    assert options["volumes"][str(tmp_path)] == {"bind": str(tmp_path), "mode": "ro"}
    assert options["volumes"]["/control"] == {"bind": CONTROL_FOLDER, "mode": "rw"}
    assert options["working_dir"] == str(workspace)


def test_options_without_network_use_none(spec):
    assert container_options(spec, DEFAULT_IMAGE, Path("/control"))["network_mode"] == "none"


def test_options_with_network_use_bridge(spec):
    networked = StageSpec(**{**spec.__dict__, "network": True})
    assert container_options(networked, DEFAULT_IMAGE, Path("/control"))["network_mode"] == "bridge"


def test_options_apply_limits_and_hardening(spec):
    options = container_options(spec, "example/deno:1", Path("/control"))
    assert options["image"] == "example/deno:1"
    assert options["pids_limit"] == 64
    assert options["read_only"] is True
    assert options["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in options["security_opt"]
    assert "/tmp" in options["tmpfs"]
    assert options["user"] == f"{os.getuid()}:{os.getgid()}"


def test_options_pass_env_and_argv(spec):
    options = container_options(spec, DEFAULT_IMAGE, Path("/control"))
    assert options["environment"] == {"HOME": "/tmp", **spec.env}
    assert options["command"] == ["deno", "task", "test"]
    assert options["entrypoint"][:2] == ["/bin/sh", "-c"]
    assert options["entrypoint"][-1] == f"{CONTROL_FOLDER}/control"
    assert options["labels"]["deno-ci.run"] == "42"
    assert options["labels"]["deno-ci.stage"] == "test"


def test_control_fifo_becomes_fd_3(spec):
    script = container_options(spec, DEFAULT_IMAGE, Path("/control"))["entrypoint"][2]
    assert script.startswith('exec 3>"$0"')
    assert script.endswith('exec "$@"')


def test_missing_engine_names_problem_and_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(ExecutorUnavailableError) as raised:
        get_executor("docker")
    message = str(raised.value)
    assert "no Docker engine responded" in message
    assert "no-engine.sock" in message
    assert "Start the Docker engine" in message


def test_image_comes_from_environment(monkeypatch):
    monkeypatch.setenv("DENO_CI_DOCKER_IMAGE", "registry.example/deno:custom")
    executor = DockerExecutor(client=object())
    assert executor.image == "registry.example/deno:custom"


def test_unknown_executor_name_is_rejected():
    with pytest.raises(ValueError, match="Unknown executor 'podman'"):
        get_executor("podman")
