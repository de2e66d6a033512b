"""The Azure App Service adapter against a fake Resource Manager that checks requests against azure-mgmt-web's description."""

import pytest
import requests

from app.deployments import requests as deployment_requests
from app.deployments.adapters.base import AdapterError, InvalidTargetError
from app.deployments.adapters.registry import create_adapter
from app.deployments.status import DeploymentStatus
from tests.deployments.azure_server import RESOURCE_GROUP, SITE, SUBSCRIPTION, FakeAzure
from tests.deployments.servers import free_port

TOKEN = "azure-test-token-5d1c9e"
IMAGE_V1 = "denoci.azurecr.io/web:1.0.0"
IMAGE_V2 = "denoci.azurecr.io/web:2.0.0"
CREDENTIALS = {"access_token": TOKEN}


@pytest.fixture
def azure(tmp_path):
    server = FakeAzure(tmp_path, TOKEN)
    yield server
    server.stop()


def live_v1(azure) -> object:
    adapter = create_adapter(azure.settings(), CREDENTIALS)
    adapter.prepare("v1", IMAGE_V1, None)
    adapter.promote("v1", None)
    return adapter


def test_lifecycle_reads_every_split_back(azure):
    adapter = create_adapter(azure.settings(), CREDENTIALS)

    assert adapter.prepare("v1", IMAGE_V1, None) == {}
    assert adapter.promote("v1", None) == {"v1": 100}
    assert adapter.prepare("v2", IMAGE_V2, "v1") == {"v1": 100}
    assert azure.sites["staging"]["image"] == IMAGE_V2
    for weight in (10, 50):
        applied = adapter.set_traffic("v2", weight, "v1")
        assert applied == {"v1": 100 - weight, "v2": weight}
        assert azure.split() == applied
        assert create_adapter(azure.settings(), CREDENTIALS).describe().split == applied
    assert azure.ramp_up_rules[0]["actionHostName"] == f"{SITE}-staging.azurewebsites.net"

    assert adapter.promote("v2", "v1") == {"v2": 100}
    assert azure.release_of(None) == "v2"
    assert azure.release_of("staging") == "v1"
    assert azure.ramp_up_rules == []


def test_rollback_after_swap_swaps_back(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.promote("v2", "v1")

    assert adapter.rollback("v1", "v2") == {"v1": 100}
    assert azure.release_of(None) == "v1"
    assert azure.sites[None]["image"] == IMAGE_V1
    assert adapter.rollback("v1", "v2") == {"v1": 100}


def test_rollback_before_promote_sets_rule_to_zero(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.set_traffic("v2", 50, "v1")

    assert adapter.rollback("v1", "v2") == {"v1": 100}
    assert azure.ramp_up_rules == []
    assert azure.release_of(None) == "v1"


def test_cleanup_deletes_slot_without_traffic(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.promote("v2", "v1")

    adapter.cleanup(["v2"])
    adapter.cleanup(["v2"])

    assert "staging" not in azure.sites
    assert adapter.describe().installed == ["v2"]


def test_cleanup_keeps_slot_with_traffic(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.set_traffic("v2", 10, "v1")

    adapter.cleanup(["v1"])

    assert azure.release_of("staging") == "v2"
    assert azure.split() == {"v1": 90, "v2": 10}


def test_prepare_twice_is_idempotent(azure):
    adapter = live_v1(azure)

    first = adapter.prepare("v2", IMAGE_V2, "v1")
    second = adapter.prepare("v2", IMAGE_V2, "v1")

    assert first == second == {"v1": 100}
    slot_writes = [request for request in azure.requests if request[2] == "build_web_apps_create_or_update_slot_request"]
    assert len(slot_writes) == 2  # one for v1, one for v2


def test_set_traffic_twice_is_idempotent(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")

    assert adapter.set_traffic("v2", 30, "v1") == adapter.set_traffic("v2", 30, "v1") == {"v1": 70, "v2": 30}
    assert len(azure.ramp_up_rules) == 1


def test_wait_until_ready_times_out_on_stopped_slot(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    azure.sites["staging"]["state"] = "Stopped"

    with pytest.raises(AdapterError, match="was not running within 1.5 s"):
        adapter.wait_until_ready("v2", 1.5)


def test_every_request_fits_the_description(azure):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    adapter.set_traffic("v2", 50, "v1")
    adapter.promote("v2", "v1")
    adapter.cleanup(["v2"])

    assert azure.requests
    assert all(builder is not None for _, _, builder, _ in azure.requests)
    # The only error answers are the reads of the slot before it exists and after it was deleted.
    errors = [(method, path, status) for method, path, _, status in azure.requests if status >= 400]
    assert all(status == 404 and "/slots/staging" in path for _, path, status in errors)


@pytest.mark.parametrize("change, code", [
    ({"api-version": "2019-08-01"}, "InvalidApiVersionParameter"),
    ({"body": {"properties": {"experiments": {"rampUpRules": [{"reroutePercent": 10}]}}}}, "InvalidRequestContent"),
    ({"body": {"properties": {"experiments": {"rampUpRules": [{"reroutePercentage": "10"}]}}}}, "InvalidRequestContent"),
    ({"path": "/config/webs"}, "InvalidResourceType"),
])
def test_server_rejects_requests_outside_description(azure, change, code):
    base = (f"{azure.endpoint}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Web"
            f"/sites/{SITE}")
    answer = requests.patch(base + change.get("path", "/config/web"),
                            params={"api-version": change.get("api-version", "2025-05-01")},
                            json=change.get("body", {"properties": {}}),
                            headers={"Authorization": f"Bearer {TOKEN}"}, verify=azure.ca_bundle, timeout=10)

    assert 400 <= answer.status_code < 500
    assert answer.json()["error"]["code"] == code


def test_invalid_settings_rejected_before_any_request(azure):
    settings = azure.settings(subscription_id="not-a-guid", resource_group="rg.", site="-web", slot="production",
                              retries=99)

    with pytest.raises(InvalidTargetError) as raised:
        create_adapter(settings, {})

    problems = " | ".join(raised.value.problems)
    for expected in ("'subscription_id' must be a GUID", "'resource_group'", "'site'", "'slot'", "'retries'",
                     "'client_secret'"):
        assert expected in problems
    assert azure.requests == []


def test_too_long_slot_host_name_is_rejected(azure):
    with pytest.raises(InvalidTargetError, match="longer than 63 characters"):
        create_adapter(azure.settings(site="a" * 40, slot="b" * 30), CREDENTIALS)


@pytest.mark.parametrize("weight", [-1, 101, 12.5, "50", True])
def test_invalid_weight_rejected_before_any_request(azure, weight):
    adapter = live_v1(azure)
    adapter.prepare("v2", IMAGE_V2, "v1")
    sent = len(azure.requests)

    with pytest.raises(InvalidTargetError, match="Weight"):
        adapter.set_traffic("v2", weight, "v1")

    assert len(azure.requests) == sent


@pytest.mark.parametrize("release, artifact", [("../v2", IMAGE_V2), ("v2", "/tmp/v2.tar.gz"), ("v2", "Web:LATEST")])
def test_invalid_release_rejected_before_any_request(azure, release, artifact):
    adapter = create_adapter(azure.settings(), CREDENTIALS)

    with pytest.raises(InvalidTargetError):
        adapter.prepare(release, artifact, None)

    assert azure.requests == []


def test_rejected_token_gives_error_without_secret(azure):
    secret = "wrong-token-4f0c2a9e77"
    adapter = create_adapter(azure.settings(), {"access_token": secret})

    with pytest.raises(AdapterError) as raised:
        adapter.describe()

    message = str(raised.value)
    assert "rejected the credentials" in message
    assert "InvalidAuthenticationToken" in message
    assert secret not in message
    assert azure.requests[-1][3] == 401


def test_unreachable_endpoint_gives_error_without_secret(azure):
    settings = azure.settings(endpoint=f"https://127.0.0.1:{free_port()}")
    adapter = create_adapter(settings, CREDENTIALS)

    with pytest.raises(AdapterError) as raised:
        adapter.describe()

    assert "cannot reach https://127.0.0.1:" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_canary_through_engine_records_server_splits(azure, project, drive):
    environment = deployment_requests.ensure_environment(project, "production", target=azure.settings())
    deployment_requests.set_credentials(environment, CREDENTIALS)
    spec = {"strategy": {"type": "canary", "steps": [{"setWeight": 10}, {"setWeight": 50}]}}

    first = drive(_deployment(project, environment, "v1", IMAGE_V1, spec).id)
    assert first.status == DeploymentStatus.SUCCEEDED, first.status_reason
    deployment = drive(_deployment(project, environment, "v2", IMAGE_V2, spec).id)

    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.status_reason
    splits = [event.split for event in deployment.events.filter_by(kind="traffic")]
    assert splits == [{"v1": 100}, {"v1": 90, "v2": 10}, {"v1": 50, "v2": 50}, {"v2": 100}]
    assert deployment.split == azure.split()
    assert azure.release_of(None) == "v2"


def _deployment(project, environment, name, image, spec):
    release = deployment_requests.create_release(project, name, image, commit_sha="b" * 40)
    return deployment_requests.create_deployment(environment, release, spec, requested_by="alice")
