"""Waiting for futures in the main thread without holding back signal handlers.

The kernel may deliver a signal such as SIGTERM to any thread of the process. Python
then runs its handler in the main thread, but only when that thread executes bytecode
again: a main thread blocked on a lock (a future's result) for good never runs it. That
left `deno-ci run` waiting for a planner that only the cancel handler would have killed.
"""

from concurrent.futures import FIRST_COMPLETED, Future, wait

# How often a waiting main thread returns to run the signal handlers that are due.
SIGNAL_CHECK_SECONDS = 0.1


def result(future: Future):
    """Return `future`'s result (or raise its exception) once it is done, running due signal handlers meanwhile."""
    while not wait([future], timeout=SIGNAL_CHECK_SECONDS).done:
        pass
    return future.result()


def first_done(futures) -> set[Future]:
    """Return the futures of `futures` that are done once at least one is, running due signal handlers meanwhile."""
    while True:
        done, _ = wait(futures, timeout=SIGNAL_CHECK_SECONDS, return_when=FIRST_COMPLETED)
        if done:
            return done
