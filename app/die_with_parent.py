"""Run a command that the kernel kills when the process that started it ends.

`python -m app.die_with_parent PARENT_PID COMMAND...`: `deno-ci serve` starts its web
server and workers this way, so that none of them outlives a serve that was killed.
The setting survives the exec into the command. If the parent has already ended, the
command does not start.

The signal is SIGKILL: nothing is left to escalate once the parent is gone, and a worker
that got SIGTERM while it was still starting was seen to hang in Python's shutdown. A
worker killed in a stage loses that attempt, which the scheduler queues again.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent, command = int(sys.argv[1]), sys.argv[2:]
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        sys.exit(f"deno-ci: cannot ask to end with the parent process: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:
        sys.exit("deno-ci: the process that started this one has ended; not starting " + command[0])
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
