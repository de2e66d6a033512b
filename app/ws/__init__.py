"""WebSocket endpoints (flask-sock)."""


def register_websockets(sock) -> None:
    from app.ws import logs  # noqa: F401  (registers the routes on `sock`)
