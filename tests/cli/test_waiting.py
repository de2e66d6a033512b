"""The main thread's waits of `deno-ci run`, which must let signal handlers run."""

import signal
import threading
from concurrent.futures import Future

from app import waiting


def _signal_other_thread_while_waiting(wait_for) -> object:
    """Send SIGUSR2 to another thread while the main thread waits with `wait_for`, and return what `wait_for` returns.

    The handler completes the future that the main thread waits for. After 5 s a timer
    completes it instead, so a wait that never runs the handler ends with "not handled".
    """
    future = Future()
    previous = signal.signal(signal.SIGUSR2, lambda *_: future.done() or future.set_result("handled"))
    stop = threading.Event()
    # The kernel runs the signal's C handler in this thread, and Python runs the handler in the main thread.
    receiver = threading.Thread(target=stop.wait)
    receiver.start()
    sender = threading.Timer(0.2, signal.pthread_kill, (receiver.ident, signal.SIGUSR2))
    fallback = threading.Timer(5, lambda: future.done() or future.set_result("not handled"))
    sender.start()
    fallback.start()
    try:
        return wait_for(future)
    finally:
        fallback.cancel()
        stop.set()
        receiver.join()
        signal.signal(signal.SIGUSR2, previous)


def test_result_runs_handlers_meanwhile():
    assert _signal_other_thread_while_waiting(waiting.result) == "handled"


def test_first_done_runs_handlers_meanwhile():
    done = _signal_other_thread_while_waiting(lambda future: waiting.first_done([future]))
    assert [future.result() for future in done] == ["handled"]
