"""The nginx and HAProxy adapters against real servers on 127.0.0.1."""

import pytest

from app.deployments.adapters.base import InvalidTargetError
from app.deployments.adapters.registry import create_adapter
from tests.deployments.servers import measure_split

REQUESTS = 1000
TOLERANCE = 5


def test_split_matches_every_weight(target, archives):
    adapter = create_adapter(target)
    adapter.prepare("v1", archives("v1"), None)
    adapter.wait_until_ready("v1", 10)
    assert adapter.set_traffic("v1", 100, None) == {"v1": 100}
    adapter.prepare("v2", archives("v2"), "v1")
    adapter.wait_until_ready("v2", 10)

    for weight in (0, 10, 25, 50, 80, 100):
        applied = adapter.set_traffic("v2", weight, "v1")
        counts = measure_split(target["public_url"], REQUESTS)
        measured = 100 * counts.get("v2", 0) / REQUESTS
        assert applied.get("v2", 0) == weight
        assert abs(measured - weight) <= TOLERANCE, f"weight {weight}: measured {measured} % ({counts})"
        assert counts.get("v1", 0) + counts.get("v2", 0) == REQUESTS


def test_describe_reads_split_back(target, archives):
    adapter = create_adapter(target)
    adapter.prepare("v1", archives("v1"), None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v2", archives("v2"), "v1")
    adapter.set_traffic("v2", 30, "v1")

    state = create_adapter(target).describe()

    assert state.split == {"v1": 70, "v2": 30}
    assert state.installed == ["v1", "v2"]


def test_prepare_twice_is_idempotent(target, archives):
    adapter = create_adapter(target)
    adapter.prepare("v1", archives("v1"), None)
    adapter.set_traffic("v1", 100, None)

    first = adapter.prepare("v2", archives("v2"), "v1")
    second = adapter.prepare("v2", archives("v2"), "v1")

    assert first == second == {"v1": 100}


def test_rollback_sends_everything_to_stable(target, archives):
    adapter = create_adapter(target)
    adapter.prepare("v1", archives("v1"), None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v2", archives("v2"), "v1")
    adapter.set_traffic("v2", 50, "v1")

    assert adapter.rollback("v1", "v2") == {"v1": 100}
    assert measure_split(target["public_url"], 200) == {"v1": 200}


@pytest.mark.parametrize("weight", [-1, 101, 12.5, "50", True])
def test_weight_outside_range_is_rejected(target, archives, weight):
    adapter = create_adapter(target)
    adapter.prepare("v1", archives("v1"), None)
    adapter.set_traffic("v1", 100, None)
    adapter.prepare("v2", archives("v2"), "v1")

    with pytest.raises(InvalidTargetError, match="Weight"):
        adapter.set_traffic("v2", weight, "v1")

    assert adapter.describe().split == {"v1": 100}


def test_invalid_settings_list_every_problem(tmp_path):
    target = {"type": "nginx", "slots": {"1bad": {"address": "nowhere", "root": "relative"}},
              "nginx": {"config": "nginx.conf"}}

    with pytest.raises(InvalidTargetError) as raised:
        create_adapter(target)

    problems = raised.value.problems
    assert any("upstream_file" in problem for problem in problems)
    assert any("'upstream'" in problem for problem in problems)
    assert any("at least two slots" in problem for problem in problems)


def test_unknown_target_type_is_rejected():
    with pytest.raises(InvalidTargetError, match="Target type 'ftp' is unknown"):
        create_adapter({"type": "ftp"})


def test_invalid_release_name_is_rejected(target, archives):
    adapter = create_adapter(target)

    with pytest.raises(InvalidTargetError, match="Release name"):
        adapter.prepare("../etc", archives("v1"), None)
