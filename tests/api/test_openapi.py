"""The OpenAPI document matches the implementation: schemathesis calls the live app with generated requests.

NOTE: schemathesis 4.32.5's `pytest.from_fixture` fails under pytest 9.2 (its lazy
fixture reads `Function._nodeid`, which pytest no longer has), so the operations
are driven through its Python API with hypothesis' `given` instead.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.api.openapi import document


@pytest.fixture
def live_schema(live_server, world):
    """The document as the live server serves it, with an administrator's token for the calls."""
    loaded = schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json")
    loaded.config.update(base_url=f"{live_server}/api/v1", headers={"Authorization": f"Bearer {world.token('admin')}"})
    return loaded


def _check_operation(operation) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        # The server's 422 rules (name patterns, clone URL forms, secret length after trimming) are
        # stricter than the document's types, so schema-valid data may be rejected; every other check runs.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()


def test_api_matches_document(live_schema):
    failures = []
    checked = 0
    for result in live_schema.get_all_operations():
        operation = result.ok()
        checked += 1
        try:
            _check_operation(operation)
        # schemathesis raises its FailureGroup, a BaseExceptionGroup; collect every operation's failures.
        except (AssertionError, BaseExceptionGroup) as error:
            details = [str(item) for item in getattr(error, "exceptions", [])] or [str(error)]
            failures.append(f"{operation.label}: {' | '.join(details)}")
    assert checked >= 25
    assert failures == [], "\n\n".join(failures)


def test_every_api_route_is_documented(app):
    documented = {(path, method) for path, item in document()["paths"].items() for method in item if method != "parameters"}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule.removeprefix("/api/v1")
            for argument in rule.arguments:
                path = path.replace(f"<int:{argument}>", f"{{{argument}}}").replace(f"<{argument}>", f"{{{argument}}}")
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - documented == set()
    assert documented - routes == set()
