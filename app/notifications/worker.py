"""A worker that takes only notification jobs: `python -m app.notifications.worker [--burst]`.

`deno-ci worker` takes notification jobs too, after stage jobs; run this where
notifications should not wait for a free stage worker. It reads DATABASE_URL,
REDIS_URL and SECRET_KEY from the environment like every other process.
"""

import argparse

from rq import SimpleWorker

from app.factory import create_app
from app.queue import notify_queue, redis_connection


def main(argv: list[str] | None = None) -> None:
    """Run the worker until it is stopped, or until the queue is empty with --burst."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="Exit when the queue is empty.")
    options = parser.parse_args(argv)
    app = create_app()
    with app.app_context():
        connection = redis_connection()
        SimpleWorker([notify_queue(connection)], connection=connection).work(burst=options.burst,
                                                                             logging_level="WARNING")


if __name__ == "__main__":
    main()
