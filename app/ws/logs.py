"""`/ws/runs/<id>/logs?after=N`: a run's log lines after N, then the live tail.

The handler subscribes to the run's Redis channel before it reads the database,
so a line stored between the two is in one or the other; lines are sent in `seq`
order, each once. A live batch that does not follow the last line sent means
something was missed (Redis was down, or two workers published out of order), and
the gap is read from the database before the batch is sent.

Messages sent: {"type": "lines", "lines": [...]}, {"type": "status", "run": {...}}
whenever the run or a stage changes, and a last {"type": "end", "status": ...}
once the run has ended and every line was sent.

A browser sends the page's Origin with the handshake, and a socket opened from
a page of another site is closed with 1008: the session cookie would otherwise let
any site read the logs of a signed-in user (cross-site WebSocket hijacking).
Clients that send no Origin (command-line tools) are not browsers and are let through.

Access is checked when the socket opens and again with every status check
(about once a second), so a user removed from the project, or deactivated,
while watching is cut off with close code 1008.
"""

import json
import logging
import time
from urllib.parse import urlsplit

import redis
from flask import current_app, request
from flask_login import current_user
from simple_websocket import ConnectionClosed

from app.api.serialize import run_json
from app.auth.permissions import Action, can, checked_in_view
from app.extensions import db, sock
from app.ws import ws
from app.models import Run, User
from app.status import TERMINAL_RUN
from app.queue import log_channel, redis_connection
from app.runs.logs import read_lines

log = logging.getLogger(__name__)

DATABASE_PAGE = 2000
STATUS_EVERY_SECONDS = 1.0
POLICY_VIOLATION = 1008


class _Stream:
    def __init__(self, ws, run_id: int, after: int) -> None:
        self.ws, self.run_id, self.last = ws, run_id, after

    def send_lines(self, lines: list[dict]) -> None:
        fresh = [line for line in lines if line["seq"] > self.last]
        if fresh:
            self.ws.send(json.dumps({"type": "lines", "lines": fresh}))
            self.last = fresh[-1]["seq"]

    def catch_up(self, until: int | None = None) -> None:
        """Send stored lines after the last one sent, up to `until` (inclusive) if given."""
        while True:
            lines = read_lines(db.engine, self.run_id, self.last, DATABASE_PAGE)
            if until is not None:
                lines = [line for line in lines if line["seq"] <= until]
            self.send_lines(lines)
            if len(lines) < DATABASE_PAGE:
                return


def _subscribe(run_id: int):
    try:
        pubsub = redis_connection().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(log_channel(run_id))
        return pubsub
    except redis.RedisError as error:
        log.warning("run %s: live log without Redis, reading the database only: %s", run_id, error)
        return None


def _next_batch(pubsub) -> list[dict] | None:
    if pubsub is None:
        time.sleep(0.5)
        return None
    try:
        message = pubsub.get_message(timeout=0.5)
    except redis.RedisError:
        return None
    if not message:
        return None
    return json.loads(message["data"]).get("lines", [])


def _may_watch(user_id: int, run: Run | None) -> bool:
    user = db.session.get(User, user_id, populate_existing=True)
    return run is not None and can(user, Action.VIEW_PROJECT, run.project)


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {request.host, urlsplit(current_app.config["BASE_URL"]).netloc}
    return urlsplit(origin).netloc in allowed


@sock.route("/ws/runs/<int:run_id>/logs", bp=ws)
@checked_in_view(Action.VIEW_PROJECT)
def run_log_socket(ws, run_id: int):
    if not _same_origin():
        log.info("run %s: refused a live log socket from origin %r", run_id, request.headers.get("Origin", "")[:200])
        _reject(ws, "The page that opened this socket is not on this site.")
        return
    if not current_user.is_authenticated:
        _reject(ws, "Sign in to watch logs.")
        return
    user_id = current_user.id
    if not _may_watch(user_id, db.session.get(Run, run_id)):
        db.session.remove()
        _reject(ws, f"Run {run_id} not found, or you may not view its project.")
        return
    try:
        after = max(int(request.args.get("after", 0)), 0)
    except ValueError:
        after = 0
    stream = _Stream(ws, run_id, after)
    pubsub = _subscribe(run_id)
    try:
        _serve(ws, stream, pubsub, user_id)
    except ConnectionClosed:
        pass
    finally:
        if pubsub is not None:
            pubsub.close()
        db.session.remove()


def _reject(ws, reason: str) -> None:
    """Close the socket with code 1008 after a `rejected` message with the reason.

    The run page shows the reason and stops reconnecting on either signal, whichever arrives.
    """
    try:
        ws.send(json.dumps({"type": "rejected", "reason": reason}))
    except ConnectionClosed:
        return
    ws.close(POLICY_VIOLATION, reason)


def _serve(ws, stream: _Stream, pubsub, user_id: int) -> None:
    stream.catch_up()
    last_status = None
    next_status = 0.0
    while True:
        batch = _next_batch(pubsub)
        if batch:
            if batch[0]["seq"] > stream.last + 1:
                stream.catch_up(until=batch[0]["seq"] - 1)
            stream.send_lines(batch)
        if time.monotonic() < next_status:
            continue
        next_status = time.monotonic() + STATUS_EVERY_SECONDS
        run = db.session.get(Run, stream.run_id, populate_existing=True)
        if run is None:
            _reject(ws, "Run not found.")
            return
        if not _may_watch(user_id, run):
            db.session.commit()
            log.info("run %s: closed the live log of user %s, who may no longer view the project", run.id, user_id)
            _reject(ws, "You may no longer view this project.")
            return
        document = run_json(run)
        db.session.commit()
        if document != last_status:
            ws.send(json.dumps({"type": "status", "run": document}))
            last_status = document
        # A cancelled run is over before its running stages have printed their last lines.
        ended = run.status in TERMINAL_RUN and all(stage["status"] != "running" for stage in document["stages"])
        if ended or pubsub is None:
            stream.catch_up()
        if ended:
            ws.send(json.dumps({"type": "end", "status": run.status}))
            ws.close()
            return
