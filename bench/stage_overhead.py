"""Overhead of a stage: a trivial three-stage pipeline through `deno-ci run` against the bare commands.

Run: .venv/bin/python bench/stage_overhead.py [--runs N]
Prints the wall time of both, their ratio and the overhead per stage. It runs the
installed `deno-ci` command, as the README does. Each stage is
its own sandboxed Deno process, and each run plans the pipeline. On an unchanged
clean tree the type check that passed before is skipped. The second figure edits a
file before each run, so each run type-checks the pipeline again, as after an edit.
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


def deno_ci_command() -> list[str]:
    """Return how a user starts `deno-ci`: the installed command beside this Python, else the module."""
    installed = Path(sys.executable).with_name("deno-ci")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "app.cli"]


def time_command(command: list[str], runs: int, edit: Path | None = None, **kwargs) -> list[float]:
    """Time `command` `runs` times; with `edit`, write a new text into that file before each run."""
    samples = []
    for index in range(runs):
        if edit is not None:
            edit.write_text(f"edit {index} {time.time()}\n")
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
        command = [*deno_ci_command(), "--data", str(Path(scratch) / "data"), "run", str(repo), "--executor", args.executor]
        time_bare(2)
        time_command(command, 2, cwd=ROOT)
        bare = time_bare(args.runs)
        through_ci = time_command(command, args.runs, cwd=ROOT)
        edited = time_command(command, args.runs, edit=repo / "notes.txt", cwd=ROOT)
    bare_median, ci_median, edited_median = (statistics.median(samples) for samples in (bare, through_ci, edited))
    print(f"bare three commands:      {summary_ms(bare)}")
    print(f"deno-ci run ({args.executor}): {summary_ms(through_ci)}")
    print(f"ratio:                    {ci_median / bare_median:.2f}x")
    print(f"overhead per stage:       {(ci_median - bare_median) * 1000 / 3:.1f} ms (target: at most 60 ms)")
    print(f"after an edit, checked:   {summary_ms(edited)}, "
          f"overhead per stage {(edited_median - bare_median) * 1000 / 3:.1f} ms")


if __name__ == "__main__":
    main()
