"""Storing a run's log lines in PostgreSQL and announcing them on Redis.

Lines are numbered per run: a batch takes its numbers by raising `runs.log_seq`
in the same transaction that inserts it, so numbers are unique and gap-free even
when parallel stages of one run write at once on different workers. Publishing
happens after the commit, so a WebSocket client never sees a line the database
does not have.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import Engine, text

from app.models._columns import utcnow
from app.queue import log_channel
from app.status import StageStatus

log = logging.getLogger(__name__)

LINE_COLUMNS = "run_id, stage_id, seq, time, stream, text"


@dataclass(frozen=True)
class PendingLine:
    stream: str
    text: str
    time: datetime


def clean_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, which binary output contains.
    return value.replace("\x00", "\ufffd")


# Numbers the lines of an attempt only while the stage still runs that attempt.
_WHILE_ATTEMPT_RUNS = (" AND EXISTS (SELECT 1 FROM stages WHERE stages.id = :stage_id AND stages.attempt = :attempt"
                       " AND stages.status = :running)")


def store_lines(engine: Engine, run_id: int, stage_id: int | None, lines: list[PendingLine],
                attempt: int | None = None) -> list[dict] | None:
    """Insert lines with the next sequence numbers of the run; return them as published records.

    With `attempt`, the lines are stored only while the stage runs that attempt, and None
    is returned when it no longer does (the scheduler queued the stage again).
    """
    if not lines:
        return []
    guard = _WHILE_ATTEMPT_RUNS if attempt is not None else ""
    with engine.begin() as connection:
        last = connection.execute(
            text(f"UPDATE runs SET log_seq = log_seq + :count WHERE id = :run_id{guard} RETURNING log_seq"),
            {"count": len(lines), "run_id": run_id, "stage_id": stage_id, "attempt": attempt,
             "running": StageStatus.RUNNING.value},
        ).scalar_one_or_none()
        if last is None:
            return None
        first = last - len(lines) + 1
        records = [
            {"seq": first + index, "stage_id": stage_id, "stream": line.stream, "text": clean_text(line.text),
             "time": line.time.isoformat()}
            for index, line in enumerate(lines)
        ]
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY log_lines ({LINE_COLUMNS}) FROM STDIN") as copy:
            for record, line in zip(records, lines):
                copy.write_row((run_id, stage_id, record["seq"], line.time, line.stream, record["text"]))
    return records


def publish_lines(connection: redis.Redis, run_id: int, records: list[dict]) -> None:
    """Announce stored lines to live viewers; viewers that miss it read them from the database."""
    if records:
        connection.publish(log_channel(run_id), json.dumps({"type": "lines", "lines": records}))


def append_system_lines(engine: Engine, connection: redis.Redis | None, run_id: int, stage_id: int | None,
                        messages: list[str]) -> None:
    """Store and publish messages from the platform itself (stream "system")."""
    now = utcnow()
    records = store_lines(engine, run_id, stage_id, [PendingLine("system", message, now) for message in messages])
    if connection is not None:
        try:
            publish_lines(connection, run_id, records)
        except redis.RedisError as error:
            log.warning("run %s: could not publish system lines: %s", run_id, error)


def read_lines(engine: Engine, run_id: int, after: int = 0, limit: int = 1000, stage_id: int | None = None) -> list[dict]:
    """Return up to `limit` stored lines of a run with `seq > after`, in order."""
    query = f"SELECT seq, stage_id, stream, text, time FROM log_lines WHERE run_id = :run_id AND seq > :after"
    params = {"run_id": run_id, "after": after, "limit": limit}
    if stage_id is not None:
        query += " AND stage_id = :stage_id"
        params["stage_id"] = stage_id
    with engine.connect() as connection:
        rows = connection.execute(text(query + " ORDER BY seq LIMIT :limit"), params).all()
    return [
        {"seq": row.seq, "stage_id": row.stage_id, "stream": row.stream, "text": row.text, "time": row.time.isoformat()}
        for row in rows
    ]


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_lines(engine: Engine, run_id: int, after: int = 0, limit: int = 1000, stage_id: int | None = None,
                 stream: str | None = None, contains: str | None = None) -> list[dict]:
    """Return up to `limit` lines with `seq > after`, filtered by stage, stream and a case-insensitive substring."""
    query = "SELECT seq, stage_id, stream, text, time FROM log_lines WHERE run_id = :run_id AND seq > :after"
    params: dict = {"run_id": run_id, "after": after, "limit": limit}
    if stage_id is not None:
        query += " AND stage_id = :stage_id"
        params["stage_id"] = stage_id
    if stream is not None:
        query += " AND stream = :stream"
        params["stream"] = stream
    if contains:
        query += " AND text ILIKE :pattern ESCAPE '\\'"
        params["pattern"] = _like_pattern(contains)
    with engine.connect() as connection:
        rows = connection.execute(text(query + " ORDER BY seq LIMIT :limit"), params).all()
    return [
        {"seq": row.seq, "stage_id": row.stage_id, "stream": row.stream, "text": row.text, "time": row.time.isoformat()}
        for row in rows
    ]
