"""The Cloud Run adapter against a fake Admin API v2 that checks requests against Google's discovery document."""

import json

import pytest
import requests

from app.deployments import requests as deployment_requests
from app.deployments.adapters.base import AdapterError, InvalidTargetError
from app.deployments.adapters.registry import create_adapter
from app.deployments.status import DeploymentStatus
from tests.deployments.cloud_run_server import PLACEHOLDER_REVISION, FakeCloudRun
from tests.deployments.servers import free_port

TOKEN = "gcp-test-token-8b3e1f"
IMAGE_V1 = "europe-docker.pkg.dev/deno-ci-test/web/app:1.0.0"
IMAGE_V2 = "europe-docker.pkg.dev/deno-ci-test/web/app:2.0.0"
CREDENTIALS = {"access_token": TOKEN}


@pytest.fixture
def cloud_run():
    server = FakeCloudRun(TOKEN)
    yield server
    server.stop()


def live_v1(cloud_run):
    adapter = create_adapter(cloud_run.settings(), CREDENTIALS)
    adapter.prepare("v1", IMAGE_V1, None)
    adapter.wait_until_ready("v1", 10)
    adapter.promote("v1", None)
    return adapter


def test_lifecycle_reads_every_split_back(cloud_run):
    adapter = create_adapter(cloud_run.settings(), CREDENTIALS)

    assert adapter.prepare("v1", IMAGE_V1, None) == {}
    adapter.wait_until_ready("v1", 10)
    assert adapter.promote("v1", None) == {"v1": 100}
    assert adapter.prepare("v2", IMAGE_V2, "v1") == {"v1": 100}
    adapter.wait_until_ready("v2", 10)
    assert cloud_run.revisions["web-v2"]["image"] == IMAGE_V2
    for weight in (10, 50):
        applied = adapter.set_traffic("v2", weight, "v1")
        assert applied == {"v1": 100 - weight, "v2": weight}
        assert cloud_run.split() == applied
        assert create_adapter(cloud_run.settings(), CREDENTIALS).describe().split == applied

    assert adapter.promote("v2", "v1") == {"v2": 100}
    assert adapter.rollback("v1", "v2") == {"v1": 100}
    assert cloud_run.split() == {"v1": 100}


def test_new_revision_gets_zero_percent_and_a_tag(cloud_run):
    adapter = live_v1(cloud_run)

    adapter.prepare("v2", IMAGE_V2, "v1")

    entry = next(entry for entry in cloud_run.service["traffic"] if entry.get("revision") == "web-v2")
    assert entry.get("percent", 0) == 0  # proto JSON leaves out zero values
    assert entry["tag"] == "v2"
    assert entry["type"] == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
    adapter.wait_until_ready("v2", 10)
    assert adapter.preview_url("v2") == "https://v2---web-abc123-ez.a.run.app"


def test_release_name_maps_to_valid_revision(cloud_run):
    adapter = live_v1(cloud_run)

    adapter.prepare("Release_2.0", IMAGE_V2, "v1")
    adapter.wait_until_ready("Release_2.0", 10)
    applied = adapter.set_traffic("Release_2.0", 20, "v1")

    revision = adapter.revision_name("Release_2.0")
    assert revision.startswith("web-release-2-0-")
    assert revision in cloud_run.revisions
    assert applied == {"v1": 80, "Release_2.0": 20}


def test_cleanup_deletes_unused_revisions(cloud_run):
    adapter = live_v1(cloud_run)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.wait_until_ready("v2", 10)
    adapter.promote("v2", "v1")

    adapter.cleanup(["v2"])
    adapter.cleanup(["v2"])

    assert "web-v1" not in cloud_run.revisions
    assert adapter.describe().installed == ["v2"]
    assert adapter.describe().split == {"v2": 100}


def test_prepare_twice_is_idempotent(cloud_run):
    adapter = live_v1(cloud_run)

    first = adapter.prepare("v2", IMAGE_V2, "v1")
    second = adapter.prepare("v2", IMAGE_V2, "v1")

    assert first == second == {"v1": 100}
    patches = [request for request in cloud_run.requests if request[2] == "run.projects.locations.services.patch"]
    assert len(patches) == 3  # prepare v1, promote v1, prepare v2


def test_failed_revision_fails_wait(cloud_run):
    adapter = live_v1(cloud_run)
    adapter.prepare("v2", "europe-docker.pkg.dev/deno-ci-test/web/broken:2", "v1")

    with pytest.raises(AdapterError, match="failed: Image .* not found"):
        adapter.wait_until_ready("v2", 10)

    assert cloud_run.split() == {"v1": 100}


def test_every_request_fits_the_description(cloud_run):
    adapter = live_v1(cloud_run)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.wait_until_ready("v2", 10)
    adapter.set_traffic("v2", 50, "v1")
    adapter.promote("v2", "v1")
    adapter.cleanup(["v2"])

    assert cloud_run.requests
    assert all(method_id is not None and status == 200 for _, _, method_id, status in cloud_run.requests)


@pytest.mark.parametrize("query, body, message", [
    ({"updateMask": "traffic", "force": "true"}, {}, 'Unknown name "force"'),
    ({"validateOnly": "yes"}, {}, "boolean parameter validateOnly"),
    ({}, {"traffic": [{"percentage": 100}]}, 'unknown name "percentage"'),
    ({}, {"traffic": [{"type": "REVISION", "percent": 100}]}, "invalid value 'REVISION'"),
    ({}, {"traffic": [{"percent": "100"}]}, "expected integer"),
])
def test_server_rejects_requests_outside_description(cloud_run, query, body, message):
    url = f"{cloud_run.endpoint}/v2/{cloud_run.service_name}"

    answer = requests.patch(url, params=query, data=json.dumps(body),
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                            timeout=10)

    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]


def test_invalid_settings_rejected_before_any_request(cloud_run):
    settings = cloud_run.settings(project="Bad_Project", region="europe", service="Web-", poll_interval=0)

    with pytest.raises(InvalidTargetError) as raised:
        create_adapter(settings, {"service_account_json": "{not json"})

    problems = " | ".join(raised.value.problems)
    for expected in ("'project'", "'region'", "'service'", "'poll_interval'", "not valid JSON"):
        assert expected in problems
    assert cloud_run.requests == []


@pytest.mark.parametrize("weight", [-1, 101, 12.5, "50", True])
def test_invalid_weight_rejected_before_any_request(cloud_run, weight):
    adapter = live_v1(cloud_run)
    sent = len(cloud_run.requests)

    with pytest.raises(InvalidTargetError, match="Weight"):
        adapter.set_traffic("v1", weight, None)

    assert len(cloud_run.requests) == sent


@pytest.mark.parametrize("release, artifact", [("../v2", IMAGE_V2), ("v2", "/tmp/v2.tar.gz"), ("v2", "App:Latest")])
def test_invalid_release_rejected_before_any_request(cloud_run, release, artifact):
    adapter = create_adapter(cloud_run.settings(), CREDENTIALS)

    with pytest.raises(InvalidTargetError):
        adapter.prepare(release, artifact, None)

    assert cloud_run.requests == []


def test_missing_service_names_it(cloud_run):
    adapter = create_adapter(cloud_run.settings(service="api"), CREDENTIALS)

    with pytest.raises(AdapterError, match="Cannot read the service of Cloud Run service 'api'.*not found"):
        adapter.describe()


def test_rejected_token_gives_error_without_secret(cloud_run):
    secret = "wrong-token-61a0be93d2"
    adapter = create_adapter(cloud_run.settings(), {"access_token": secret})

    with pytest.raises(AdapterError) as raised:
        adapter.describe()

    message = str(raised.value)
    assert "rejected the credentials" in message
    assert secret not in message
    assert cloud_run.requests[-1][3] == 401


def test_unreachable_endpoint_gives_error_without_secret(cloud_run):
    settings = cloud_run.settings(endpoint=f"http://127.0.0.1:{free_port()}")
    adapter = create_adapter(settings, CREDENTIALS)

    with pytest.raises(AdapterError) as raised:
        adapter.describe()

    assert "cannot reach http://127.0.0.1:" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_rollback_without_stable_keeps_placeholder(cloud_run):
    adapter = create_adapter(cloud_run.settings(), CREDENTIALS)
    adapter.prepare("v1", IMAGE_V1, None)
    adapter.wait_until_ready("v1", 10)

    assert adapter.rollback(None, "v1") == {}
    assert cloud_run.split() == {PLACEHOLDER_REVISION: 100}


def test_rollback_without_any_other_revision_fails(cloud_run):
    adapter = live_v1(cloud_run)

    with pytest.raises(AdapterError, match="Cloud Run needs 100 %"):
        adapter.rollback(None, "v1")

    assert cloud_run.split() == {"v1": 100}


def test_canary_through_engine_records_server_splits(cloud_run, project, drive):
    environment = deployment_requests.ensure_environment(project, "production", target=cloud_run.settings())
    deployment_requests.set_credentials(environment, CREDENTIALS)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"setWeight": 50}]}}

    first = drive(_deployment(project, environment, "v1", IMAGE_V1, spec).id)
    assert first.status == DeploymentStatus.SUCCEEDED, first.status_reason
    deployment = drive(_deployment(project, environment, "v2", IMAGE_V2, spec).id)

    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.status_reason
    splits = [event.split for event in deployment.events.filter_by(kind="traffic")]
    assert splits == [{"v1": 100}, {"v1": 90, "v2": 10}, {"v1": 50, "v2": 50}, {"v2": 100}]
    assert deployment.split == cloud_run.split()


def _deployment(project, environment, name, image, spec):
    release = deployment_requests.create_release(project, name, image, commit_sha="c" * 40)
    return deployment_requests.create_deployment(environment, release, spec, requested_by="alice")
