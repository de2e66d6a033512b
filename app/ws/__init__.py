"""WebSocket endpoints (flask-sock), on a blueprint so that every app instance gets them.

flask-sock attaches a route without a blueprint to the app it was last initialised
with, so a second `create_app` in one process (tests, tools) would lack the route.
"""

from flask import Blueprint

ws = Blueprint("ws", __name__)


def register_websockets(app) -> None:
    from app.ws import logs  # noqa: F401  (adds the routes to `ws`)

    app.register_blueprint(ws)
