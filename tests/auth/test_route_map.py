"""Every route declares who may use it, and each role gets what its rule says.

The table EXPECTED_ACTIONS is written out here on purpose, apart from the
permission code, so that a change of the rules shows up as a failing case.
"""

import pytest

from app.auth.permissions import Action
from tests.people import ROLES, client_for

ALL_ACTIONS = set(Action)
DEVELOPER = {Action.VIEW_PROJECT, Action.VIEW_DELIVERIES, Action.TRIGGER_RUN, Action.CANCEL_RUN, Action.RERUN,
             Action.EDIT_PIPELINE, Action.DEPLOY, Action.CREATE_PROJECT}
# What each role may do in project "alpha"; "outsider" is a developer of "beta" only.
EXPECTED_ACTIONS = {
    "viewer": {Action.VIEW_PROJECT, Action.VIEW_DELIVERIES},
    "developer": DEVELOPER,
    "project_admin": DEVELOPER | {Action.MANAGE_PROJECT, Action.MANAGE_MEMBERS, Action.MANAGE_SECRETS, Action.REDELIVER},
    "outsider": {Action.CREATE_PROJECT},
    "admin": ALL_ACTIONS,
}
# The rule each forge and notification route must declare, written out so that a wrong decorator
# fails here; None is `public`. The statuses each role gets then follow from EXPECTED_ACTIONS.
EXPECTED_RULES = {
    "hooks.receive": None,
    "web.forge_login": None,
    "web.forge_callback": None,
    "web.connect_repository": Action.CREATE_PROJECT,
    "api.rerun_run": Action.RERUN,
    "api.approve_run": Action.MANAGE_PROJECT,
    "api.list_deliveries": Action.VIEW_DELIVERIES,
    "api.redeliver": Action.REDELIVER,
    "web.webhook_deliveries": Action.VIEW_DELIVERIES,
    "web.webhook_delivery": Action.VIEW_DELIVERIES,
    "web.webhook_redeliver": Action.REDELIVER,
    "web.notification_settings": Action.VIEW_PROJECT,
    "web.notification_channel_fields": Action.MANAGE_PROJECT,
    "web.notification_channel_create": Action.MANAGE_PROJECT,
    "web.notification_channel_delete": Action.MANAGE_PROJECT,
    "web.notification_channel_test": Action.MANAGE_PROJECT,
    "web.notification_rule_create": Action.MANAGE_PROJECT,
    "web.notification_rule_delete": Action.MANAGE_PROJECT,
    "web.notification_preference": Action.VIEW_PROJECT,
    "web.notification_deliveries": Action.VIEW_PROJECT,
    "web.project_runs": Action.VIEW_PROJECT,
    "web.project_search": Action.VIEW_PROJECT,
    "web.project_metrics_page": Action.VIEW_PROJECT,
    "web.run_page": Action.VIEW_PROJECT,
    "web.run_summary": Action.VIEW_PROJECT,
    "web.run_tests": Action.VIEW_PROJECT,
    "web.run_log_text": Action.VIEW_PROJECT,
    "web.artifact_download": Action.VIEW_PROJECT,
    "web.pipeline_editor": Action.VIEW_PROJECT,
    "web.pipeline_validate": Action.EDIT_PIPELINE,
    "web.pipeline_run_edited": Action.EDIT_PIPELINE,
    "web.pipeline_save": Action.EDIT_PIPELINE,
    "hooks.deployment_alarm": None,
    "api.list_environments": Action.VIEW_PROJECT,
    "api.put_environment": Action.MANAGE_PROJECT,
    "api.list_deployments": Action.VIEW_PROJECT,
    "api.create_deployment": Action.DEPLOY,
    "api.get_deployment": Action.VIEW_PROJECT,
    "api.promote_deployment": Action.DEPLOY,
    "api.abort_deployment": Action.DEPLOY,
    "api.approve_deployment": Action.DEPLOY,
    "api.rollback_deployment": Action.DEPLOY,
    "web.environments": Action.VIEW_PROJECT,
    "web.deployment_page": Action.VIEW_PROJECT,
    "web.deployment_status": Action.VIEW_PROJECT,
    "web.deployment_action": Action.DEPLOY,
}
# Routes open to every signed-in user.
SIGNED_IN = {"web.index", "web.sdk_types"}
# Routes checked by another test, because the WebSocket needs a live server.
TESTED_ELSEWHERE = {"run_log_socket"}
SKIPPED_ENDPOINTS = {"static"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_declares_rule(app):
    missing = [f"{method} {rule.rule} ({rule.endpoint})" for rule, method in _routes(app)
               if getattr(app.view_functions[rule.endpoint], "route_rule", None) is None]
    assert missing == [], "routes without a permission rule; decorate them with public, signed_in or requires"


@pytest.mark.parametrize("endpoint", sorted(SIGNED_IN))
def test_route_declares_signed_in(app, endpoint):
    assert app.view_functions[endpoint].route_rule.kind == "signed_in"


@pytest.mark.parametrize(("endpoint", "action"), EXPECTED_RULES.items())
def test_route_declares_expected_rule(app, endpoint, action):
    rule = app.view_functions[endpoint].route_rule
    if action is None:
        assert rule.kind == "public"
    else:
        assert (rule.kind, rule.action) == ("action", action)


def _cases():
    from app.factory import create_app

    # Only the route map is needed here, so no database or Redis is touched.
    app = create_app({"TESTING": True, "DATABASE_URL": "postgresql://unused", "REDIS_URL": "redis://unused"})
    for rule, method in _routes(app):
        if rule.endpoint.split(".")[-1] in TESTED_ELSEWHERE:
            continue
        for role in ROLES:
            yield pytest.param(rule.rule, rule.endpoint, method, role, id=f"{method} {rule.rule} as {role}")


def _add_project_rows(world) -> dict[str, int]:
    """Add a notification channel and rule, a webhook delivery and a deployment to project "alpha"; return their ids."""
    from app.extensions import db
    from app.models import Deployment, Environment, NotificationChannel, NotificationRule, Release, WebhookDelivery

    channel = NotificationChannel(project_id=world.alpha.id, name="team", kind="webhook",
                                  settings={"url": "http://127.0.0.1:9/hook"}, enabled=True)
    db.session.add(channel)
    db.session.flush()
    rule = NotificationRule(project_id=world.alpha.id, channel_id=channel.id, events=["run_failed"], branches=[])
    # Without a body the delivery cannot be redelivered (409), so no payload is processed.
    delivery = WebhookDelivery(project_id=world.alpha.id, forge="github", forge_delivery_id="d-1", event="push",
                               headers={}, status_code=401, reason="Signature check failed")
    # An ended deployment, so that promote, abort and approve answer 409 and nothing reaches a target.
    environment = Environment(project_id=world.alpha.id, name="production", kind="production", target={})
    release = Release(project_id=world.alpha.id, name="v1", artifact="/nowhere.tar.gz")
    db.session.add_all([rule, delivery, environment, release])
    db.session.flush()
    deployment = Deployment(environment_id=environment.id, number=1, release_id=release.id, status="succeeded",
                            spec={}, steps=[], step_index=0, weight=100, split={"v1": 100})
    db.session.add(deployment)
    db.session.commit()
    return {"<int:channel_id>": channel.id, "<int:rule_id>": rule.id, "<int:delivery_id>": delivery.id,
            "<int:deployment_id>": deployment.id, "<int:environment_id>": environment.id}


def _url(world, path: str, role_token_id: int, row_ids: dict[str, int]) -> str:
    values = {
        "<name>": "alpha", "<int:run_id>": str(world.run.id), "<username>": "viewer", "<secret_name>": "API_KEY",
        "<int:token_id>": str(role_token_id), "<int:user_id>": str(world.users["viewer"].id), "<artifact>": "missing",
        "<forge>": "github", "<project>": "alpha", "<environment>": "production", "<action>": "promote", **{placeholder: str(row_id) for placeholder, row_id in row_ids.items()},
    }
    for placeholder, value in values.items():
        path = path.replace(placeholder, value)
    assert "<" not in path, f"no test value for a parameter of {path}"
    return path


def _expected(app, endpoint: str, role: str) -> set[int] | None:
    """Return the statuses that mean 'refused' for this role, or None when the role is let through."""
    rule = app.view_functions[endpoint].route_rule
    if rule.kind == "public":
        return None
    api = endpoint.startswith("api.")
    if role == "anonymous":
        return {401} if api else {302}
    if rule.kind == "signed_in" or rule.action in EXPECTED_ACTIONS[role]:
        return None
    project_route = rule.action not in (Action.ADMIN, Action.CREATE_PROJECT)
    if role == "outsider" and project_route:
        return {404}
    return {403}


@pytest.mark.parametrize(("path", "endpoint", "method", "role"), list(_cases()))
def test_route_answers_role(db_app, world, path, endpoint, method, role):
    from app.auth.tokens import create_token

    viewer_token, _ = create_token(world.users["viewer"], "someone's", "read")
    url = _url(world, path, viewer_token.id, _add_project_rows(world))
    headers, client = {}, db_app.test_client()
    if endpoint.startswith("api.") and role != "anonymous":
        headers["Authorization"] = f"Bearer {world.token(role)}"
    else:
        client = client_for(db_app, world, role)
    body = {"json": {}} if endpoint.startswith("api.") and method != "GET" else {}
    response = client.open(url, method=method, headers=headers, **body)

    refused = _expected(db_app, endpoint, role)
    assert response.status_code < 500, response.get_data(as_text=True)
    if db_app.view_functions[endpoint].route_rule.kind == "public":
        return
    if refused is None:
        assert response.status_code not in (401, 403), response.get_data(as_text=True)
    else:
        assert response.status_code in refused, response.get_data(as_text=True)
    if refused == {302}:
        assert "/login" in response.headers["Location"]
    if refused == {404} and "<name>" not in path:
        # Reached through a run or deployment id, the project stays hidden: its name would leak.
        assert "alpha" not in response.get_data(as_text=True)
