"""Redis connections and the RQ queue that workers take stage jobs from."""

import threading

import redis
from flask import current_app
from rq import Queue

QUEUE_NAME = "deno-ci"


_POOLS: dict[tuple, redis.ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()


def redis_connection(url: str | None = None, **options) -> redis.Redis:
    """Return a Redis client for the platform's Redis (the app's `REDIS_URL` unless given).

    Clients of one address and `options` share a connection pool in the process, because
    a new connection costs a TCP handshake and several commands, and a worker needs a
    client a few times per stage. Closing such a client leaves the pool's connections open.
    """
    return redis.Redis(connection_pool=_pool(url or current_app.config["REDIS_URL"], options))


def _pool(url: str, options: dict) -> redis.ConnectionPool:
    key = (url, tuple(sorted(options.items())))
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = redis.ConnectionPool.from_url(url, health_check_interval=30, **options)
    return pool


def run_queue(connection: redis.Redis | None = None) -> Queue:
    return Queue(QUEUE_NAME, connection=connection or redis_connection())


def log_channel(run_id: int) -> str:
    """Return the pub/sub channel on which a run's new log lines are published."""
    return f"deno-ci:run:{run_id}:log"


def control_channel(run_id: int) -> str:
    """Return the pub/sub channel that tells the workers of a run to cancel it."""
    return f"deno-ci:run:{run_id}:control"


# Notifications have a queue of their own, so they never wait in line behind stage jobs that
# may run for an hour, and an operator can run workers that take only notifications.
NOTIFY_QUEUE_NAME = "deno-ci-notify"


def notify_queue(connection: redis.Redis | None = None) -> Queue:
    return Queue(NOTIFY_QUEUE_NAME, connection=connection or redis_connection())
