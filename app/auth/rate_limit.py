"""Limits on failed sign-ins, counted in Redis so that every web replica shares them.

Fixed windows of WINDOW_SECONDS, three counters each: failures on one name from one
address (MAX_FAILURES_PER_NAME), failures from one address on any name
(MAX_FAILURES_PER_ADDRESS), and failures on one name from all addresses together
(MAX_FAILURES_PER_NAME_EVERYWHERE). Once one of them is reached, further attempts
that it counts get 429 until its window ends. A name is counted per address first, so
somebody guessing from one address blocks only that address and cannot lock the
account's owner out; the much higher count over all addresses still slows guessing
spread over many addresses. Successful sign-ins do not count.
"""

import logging

import redis

from app.queue import redis_connection

log = logging.getLogger(__name__)

WINDOW_SECONDS = 300
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20
MAX_FAILURES_PER_NAME_EVERYWHERE = 100


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    name = username.lower()
    return [(f"deno-ci:sign-in-failures:name-addr:{name}:{address}", MAX_FAILURES_PER_NAME),
            (f"deno-ci:sign-in-failures:addr:{address}", MAX_FAILURES_PER_ADDRESS),
            (f"deno-ci:sign-in-failures:name:{name}", MAX_FAILURES_PER_NAME_EVERYWHERE)]


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


def reset(username: str, address: str) -> None:
    """Forget the failures of a name from this address (after a successful sign-in from it)."""
    try:
        redis_connection().delete(_keys(username, address)[0][0])
    except redis.RedisError:
        pass
