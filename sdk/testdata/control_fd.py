"""Run a command with a control pipe on file descriptor 3, as the platform does.

Usage: python3 control_fd.py EVENTS_FILE COMMAND [ARG...]

The command inherits this process's stdin, stdout and stderr, gets the write
end of a pipe as descriptor 3 and DENO_CI_CONTROL_FD=3 in its environment.
Every line read from the pipe is written to EVENTS_FILE. Exits with the
command's exit code. The SDK's tests use it; it is also the smallest correct
reader of the runner's control channel.
"""

import os
import sys


def main() -> int:
    events_path, command = sys.argv[1], sys.argv[2:]
    read_end, write_end = os.pipe()  # both close-on-exec
    env = dict(os.environ, DENO_CI_CONTROL_FD="3")
    pid = os.posix_spawnp(
        command[0],
        command,
        env,
        file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 3)],
    )
    os.close(write_end)  # EOF arrives once the runner (its only other holder) exits
    data = bytearray()
    while chunk := os.read(read_end, 65536):
        data += chunk
    with open(events_path, "wb") as events:
        events.write(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
