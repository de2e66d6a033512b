"""A stage's log sink: collects output lines and writes them to PostgreSQL and Redis in batches.

Batching keeps a flood of output to a few transactions a second. When PostgreSQL
is unreachable (a restart), the batch stays in memory and is written again with
backoff, so no line a stage printed is lost; when Redis is unreachable, live
viewers miss the announcement and read the lines from the database instead.
With a `SecretMasker`, lines are masked as they are written, before anything is
stored or published.
"""

import logging
import threading
import time

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from app.models._columns import utcnow
from app.runs.logs import PendingLine, publish_lines, store_lines
from jobs.masking import HOLD_SECONDS, SecretMasker

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05
MAX_BATCH = 5000
MAX_BACKOFF = 5.0
# How long `close` keeps retrying a database that is down before it gives the lines up.
CLOSE_DEADLINE = 300.0


class LogSink:
    """Batches the lines of one stage attempt into the run's log.

    With `attempt`, lines are stored only while the stage runs that attempt: the output
    of an attempt that the scheduler replaced (its worker was taken for lost) is dropped.
    """

    def __init__(self, engine: Engine, connection: redis.Redis | None, run_id: int, stage_id: int | None,
                 masker: SecretMasker | None = None, attempt: int | None = None) -> None:
        self.engine = engine
        self.masker = masker
        self.connection = connection
        self.run_id = run_id
        self.stage_id = stage_id
        self.attempt = attempt
        self._replaced = False
        self._pending: list[PendingLine] = []
        self._condition = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._flush_loop, name=f"log-sink-{run_id}", daemon=True)
        self._thread.start()

    def write(self, stream: str, text: str) -> None:
        with self._condition:
            # The first line after a quiet spell goes out at once, so a viewer sees it
            # without the flush interval's delay; lines that follow while it is being
            # written form the next batch.
            was_idle = not self._pending
            if self.masker is None:
                self._pending.append(PendingLine(stream, text, utcnow()))
            else:
                self._pending.extend(PendingLine(*line, utcnow()) for line in self.masker.feed(stream, text))
            if (was_idle and self._pending) or len(self._pending) >= MAX_BATCH:
                self._condition.notify()

    def close(self) -> None:
        """Write every remaining line, then stop the flushing thread."""
        with self._condition:
            if self.masker is not None:
                self._pending.extend(PendingLine(*line, utcnow()) for line in self.masker.flush())
            self._closing = True
            self._condition.notify()
        self._thread.join(CLOSE_DEADLINE + 10)

    def _take_batch(self) -> list[PendingLine]:
        with self._condition:
            if not self._pending and not self._closing:
                self._condition.wait(FLUSH_INTERVAL)
            if self.masker is not None:
                self._pending.extend(PendingLine(*line, utcnow()) for line in self.masker.flush(older_than=HOLD_SECONDS))
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            return batch

    def _flush_loop(self) -> None:
        backoff = 0.1
        failing_since: float | None = None
        while True:
            batch = self._take_batch()
            if not batch:
                if self._closing:
                    return
                continue
            if self._replaced:
                continue
            try:
                records = store_lines(self.engine, self.run_id, self.stage_id, batch, self.attempt)
            except DBAPIError as error:
                with self._condition:
                    self._pending[:0] = batch
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("run %s stage %s: cannot store log lines, retrying: %s", self.run_id, self.stage_id, error)
                if self._closing and time.monotonic() - failing_since > CLOSE_DEADLINE:
                    log.error("run %s stage %s: gave up storing %d log lines", self.run_id, self.stage_id, len(self._pending))
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if failing_since is not None:
                log.info("run %s stage %s: storing log lines again", self.run_id, self.stage_id)
                failing_since, backoff = None, 0.1
            if records is None:
                self._replaced = True
                log.warning("run %s stage %s: attempt %s no longer runs; its remaining output is dropped",
                            self.run_id, self.stage_id, self.attempt)
                continue
            self._publish(records)

    def _publish(self, records: list[dict]) -> None:
        if self.connection is None:
            return
        try:
            publish_lines(self.connection, self.run_id, records)
        except redis.RedisError as error:
            log.debug("run %s: could not publish log lines: %s", self.run_id, error)
