"""The live log WebSocket checks access when it opens and while it runs."""

import json

import pytest
import requests
import websocket
from sqlalchemy import delete

from app.extensions import db
from app.models import Membership
from tests.people import PASSWORD


def _open(live_server, username: str, run_id: int, origin: str | None = None):
    session = requests.Session()
    response = session.post(f"{live_server}/login", data={"username": username, "password": PASSWORD}, allow_redirects=False)
    assert response.status_code == 302
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    return websocket.create_connection(f"{live_server.replace('http', 'ws')}/ws/runs/{run_id}/logs", cookie=cookie, timeout=10,
                                       origin=origin or live_server)


def _receive_until_closed(socket) -> tuple[list[dict], int | None]:
    messages = []
    while True:
        opcode, data = socket.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return messages, int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if opcode == websocket.ABNF.OPCODE_TEXT:
            messages.append(json.loads(data))


def test_member_of_other_project_is_refused(live_server, world):
    socket = _open(live_server, "outsider", world.run.id)
    messages, code = _receive_until_closed(socket)
    # Only the reason, for the page to show before it stops reconnecting: no line and no status.
    assert messages == [{"type": "rejected", "reason": f"Run {world.run.id} not found, or you may not view its project."}]
    assert code == 1008


def test_socket_from_other_site_is_refused(live_server, world):
    socket = _open(live_server, "viewer", world.run.id, origin="http://attacker.example")
    messages, code = _receive_until_closed(socket)
    assert messages == [{"type": "rejected", "reason": "The page that opened this socket is not on this site."}]
    assert code == 1008


def test_socket_from_same_site_is_served(live_server, world):
    socket = _open(live_server, "viewer", world.run.id)
    assert json.loads(socket.recv())["type"] == "status"
    socket.close()


def test_removed_member_is_cut_off_while_watching(live_server, world):
    socket = _open(live_server, "viewer", world.run.id)
    first = json.loads(socket.recv())
    assert first["type"] in ("lines", "status")
    db.session.execute(delete(Membership).where(Membership.user_id == world.users["viewer"].id))
    db.session.commit()
    messages, code = _receive_until_closed(socket)
    assert code == 1008
    assert messages[-1] == {"type": "rejected", "reason": "You may no longer view this project."}
    assert all(message["type"] != "end" for message in messages)


@pytest.mark.parametrize("username", ["viewer", "developer"])
def test_member_receives_status(live_server, world, username):
    socket = _open(live_server, username, world.run.id)
    assert json.loads(socket.recv())["type"] == "status"
    socket.close()
