"""The live log WebSocket: stored lines, then the live tail, with no gap and no duplicate."""

import json

import websocket

from app.projects import add_project
from app.runs import service
from app.runs.events import make_event
from tests.conftest import wait_for
from tests.runs.test_faults import TICKING_PIPELINE, texts


def open_socket(live_server: str, session, run_id: int, after: int):
    url = live_server.replace("http://", "ws://") + f"/ws/runs/{run_id}/logs?after={after}"
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    return websocket.create_connection(url, cookie=cookie, timeout=60)


def receive_lines(socket, stop_after_seq: int | None = None) -> tuple[list[dict], str | None]:
    lines, end = [], None
    while True:
        message = json.loads(socket.recv())
        if message["type"] == "lines":
            lines += message["lines"]
            if stop_after_seq is not None and lines[-1]["seq"] >= stop_after_seq:
                return lines, None
        elif message["type"] == "end":
            return lines, message["status"]


def test_reconnect_mid_run_gets_every_line_once(workers, make_repo, live_server, signed_in_session):
    repo = make_repo({"deno-pipeline.ts": TICKING_PIPELINE % {"count": 200, "interval": 10}})
    run_id = service.create_run(add_project("live", str(repo)), trigger="cli", event=make_event("push", branch="main")).id
    wait_for(lambda: "tick 20" in texts(run_id), timeout=120)

    first = open_socket(live_server, signed_in_session, run_id, after=0)
    before, _ = receive_lines(first, stop_after_seq=30)
    first.close()
    resumed = open_socket(live_server, signed_in_session, run_id, after=before[-1]["seq"])
    after, status = receive_lines(resumed)
    resumed.close()

    sequence = [line["seq"] for line in before + after]
    assert sequence == list(range(1, len(sequence) + 1))
    ticks = [line["text"] for line in before + after if line["text"].startswith("tick ")]
    assert ticks == [f"tick {index}" for index in range(1, 201)]
    assert status == "success"


def test_socket_refuses_anonymous_viewer(live_server, db_app):
    socket = websocket.create_connection(live_server.replace("http://", "ws://") + "/ws/runs/1/logs", timeout=10)
    assert json.loads(socket.recv()) == {"type": "rejected", "reason": "Sign in to watch logs."}
    try:
        message = socket.recv()
    except websocket.WebSocketConnectionClosedException:
        message = ""
    assert message == ""
    assert not socket.connected
