"""The webhook receiver: `POST /hooks/<forge>/<project name>`.

The view only bounds and reads the body; app/forges/deliveries.py verifies, parses,
logs and starts the run. CSRF protection does not apply: forges sign their requests.
"""

from flask import Blueprint, current_app, jsonify, request

from app.auth.permissions import public
from app.extensions import csrf
from app.forges import deliveries

hooks = Blueprint("hooks", __name__)
csrf.exempt(hooks)


@hooks.post("/hooks/<forge>/<project>")
# Open to everyone, because app/forges/deliveries.py accepts a delivery only with the project's signature.
@public
def receive(forge: str, project: str):
    """Receive one webhook delivery: 202 with the run when one is queued, 200 with the reason when none is."""
    # Flask's headers are case-insensitive already; lower-case names keep the forge modules free of Flask.
    headers = {name.lower(): value for name, value in request.headers.items()}
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        result = deliveries.reject_oversized(forge, project, headers, request.content_length, limit)
        return jsonify(result.json()), result.status_code, {"Connection": "close"}

    body = request.stream.read(limit + 1)
    if len(body) > limit:
        result = deliveries.reject_oversized(forge, project, headers, None, limit)
        return jsonify(result.json()), result.status_code, {"Connection": "close"}

    result = deliveries.receive(forge, project, headers, body)
    return jsonify(result.json()), result.status_code


@hooks.post("/hooks/environments/<int:environment_id>/alarm")
@public
def deployment_alarm(environment_id: int):
    """Roll back the environment's active deployment because a monitoring alarm fired.

    Authorization: Bearer <the environment's alarm_token credential>; body {"name": "HighErrorRate"}.
    202 with the deployment being rolled back, 200 when nothing was deploying.
    """
    from flask import abort

    from app.deployments.requests import ApprovalError, raise_alarm
    from app.extensions import db
    from app.models import Environment

    environment = db.session.get(Environment, environment_id) or abort(404, f"Environment {environment_id} not found.")
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    body = request.get_json(silent=True) or {}
    name = str(body.get("name") or "unnamed alarm")[:200] if isinstance(body, dict) else "unnamed alarm"
    try:
        deployment = raise_alarm(environment, token, name)
    except ApprovalError as error:
        return jsonify({"error": "Forbidden", "detail": str(error)}), 403
    if deployment is None:
        return jsonify({"deployment": None, "detail": "No deployment is active in this environment."}), 200
    return jsonify({"deployment": deployment.id, "status": deployment.status, "detail": f"Alarm {name!r} recorded; "
                    "the deployment is being rolled back."}), 202
