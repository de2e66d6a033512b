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
