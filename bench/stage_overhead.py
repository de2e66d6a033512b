"""Overhead of a stage: a trivial three-stage pipeline through `deno-ci run` against the bare commands.

Run: .venv/bin/python bench/stage_overhead.py [--runs N]
Prints the wall time of both, their ratio and the overhead per stage. The pipeline
is planned and type-checked once per run; each stage is its own sandboxed Deno process.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DENO, ROOT, make_repo, summary_ms  # noqa: E402

COMMANDS = [[DENO, "eval", f"console.log({index})"] for index in (1, 2, 3)]

PIPELINE = '''import { Pipeline, run } from "deno-ci";

const pipeline = new Pipeline();
for (const index of [1, 2, 3]) {
  pipeline.stage(`stage ${index}`, async () => {
    await run(["deno", "eval", `console.log(${index})`]);
  });
}
export default pipeline;
'''


def time_command(command: list[str], runs: int, **kwargs) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
        samples.append(time.perf_counter() - started)
    return samples


def time_bare(runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        for command in COMMANDS:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured runs of each (after 2 warm-up runs)")
    parser.add_argument("--executor", default="bubblewrap", help="executor for deno-ci run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as scratch:
        repo = make_repo(Path(scratch) / "repo", {"deno-pipeline.ts": PIPELINE})
        command = [sys.executable, "-m", "app.cli", "--data", str(Path(scratch) / "data"), "run", str(repo),
                   "--executor", args.executor]
        time_bare(2)
        time_command(command, 2, cwd=ROOT)
        bare = time_bare(args.runs)
        through_ci = time_command(command, args.runs, cwd=ROOT)
    bare_median, ci_median = statistics.median(bare), statistics.median(through_ci)
    print(f"bare three commands:      {summary_ms(bare)}")
    print(f"deno-ci run ({args.executor}): {summary_ms(through_ci)}")
    print(f"ratio:                    {ci_median / bare_median:.2f}x")
    print(f"overhead per stage:       {(ci_median - bare_median) * 1000 / 3:.1f} ms (target: at most 60 ms)")


if __name__ == "__main__":
    main()
