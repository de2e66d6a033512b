"""Measure what the bubblewrap executor adds to `deno eval "console.log(1)"`.

Prints the median wall-clock time of 20 runs, after 2 warm-up runs, for the bare
command and for the command inside the executor with the network off and on.
Both use the same writable DENO_DIR. Run: .venv/bin/python bench/executor_overhead.py
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import deno

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs.executor import Mount, StageSpec, get_executor

RUNS = 20
WARM_UP = 2


def median_ms(action) -> float:
    for _ in range(WARM_UP):
        action()
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    binary = Path(deno.find_deno_bin()).resolve()
    deno_dir = Path(tempfile.mkdtemp(prefix="bench-deno-dir-", dir="/var/tmp"))
    workspace = Path(tempfile.mkdtemp(prefix="bench-workspace-", dir="/var/tmp"))
    env = {"DENO_DIR": str(deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
    argv = [str(binary), "eval", "console.log(1)"]
    executor = get_executor("bubblewrap")

    def bare():
        subprocess.run(argv, env={**env, "PATH": "/usr/bin:/bin", "HOME": "/tmp"}, cwd=workspace, check=True, capture_output=True)

    def sandboxed(network: bool):
        spec = StageSpec(argv=argv, workspace=workspace, env=env, network=network, mounts=(Mount(binary), Mount(deno_dir, writable=True)))
        events = list(executor.start(spec).events())
        assert events[-1].code == 0, events

    bare_ms = median_ms(bare)
    off_ms = median_ms(lambda: sandboxed(False))
    on_ms = median_ms(lambda: sandboxed(True))
    print(f"deno eval, bare:                      {bare_ms:6.1f} ms")
    print(f"bubblewrap executor, network off:     {off_ms:6.1f} ms  (+{off_ms - bare_ms:.1f} ms)")
    print(f"bubblewrap executor, network on:      {on_ms:6.1f} ms  (+{on_ms - bare_ms:.1f} ms)")
    print(f"median of {RUNS} runs each, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
