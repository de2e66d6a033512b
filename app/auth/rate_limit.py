"""Limits on failed sign-ins, counted in Redis so that every web replica shares them.

A fixed window per user name and per client address: after MAX_FAILURES_PER_NAME
failed attempts on one name, or MAX_FAILURES_PER_ADDRESS from one address, within
WINDOW_SECONDS, further attempts are rejected with 429 until the window ends.
Successful sign-ins do not count, so a person who types their password right is
never slowed down by their own earlier typos beyond the window.
"""

import logging

import redis

from app.queue import redis_connection

log = logging.getLogger(__name__)

WINDOW_SECONDS = 300
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    return [(f"deno-ci:sign-in-failures:name:{username.lower()}", MAX_FAILURES_PER_NAME),
            (f"deno-ci:sign-in-failures:addr:{address}", MAX_FAILURES_PER_ADDRESS)]


def retry_after(username: str, address: str) -> int | None:
    """Return seconds to wait if sign-in for this name or address is blocked now, else None."""
    try:
        connection = redis_connection()
        for key, limit in _keys(username, address):
            count = connection.get(key)
            if count is not None and int(count) >= limit:
                return max(connection.ttl(key), 1)
    except redis.RedisError as error:
        # Failing open keeps people able to sign in during a Redis outage; argon2 still slows guessing.
        log.warning("sign-in limit not checked, Redis failed: %s", error)
    return None


def record_failure(username: str, address: str) -> None:
    """Count one failed sign-in for the name and the address."""
    try:
        connection = redis_connection()
        for key, _ in _keys(username, address):
            # EXPIRE ... NX needs Redis 7; reading the TTL works on the embedded Redis 6 as well.
            _, ttl = connection.pipeline().incr(key).ttl(key).execute()
            if ttl == -1:
                connection.expire(key, WINDOW_SECONDS)
    except redis.RedisError as error:
        log.warning("failed sign-in not counted, Redis failed: %s", error)


def reset(username: str) -> None:
    """Forget the failures of a name (after a successful sign-in)."""
    try:
        redis_connection().delete(_keys(username, "")[0][0])
    except redis.RedisError:
        pass
