"""Measure the runner's overhead per stage: `runner.ts exec` of a stage that
runs one trivial command, against that bare command.

Usage: .venv/bin/python bench/runner_exec_overhead.py [DENO] [ROUNDS]  (DENO defaults to the deno package's binary)

Prints the median and minimum wall time of each, the overhead, and the time
of a stage whose function does nothing. Run on demand; nothing asserts it.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SDK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sdk")
PIPELINE = """
import { Pipeline, run } from "deno-ci";
const pipeline = new Pipeline();
pipeline.stage("noop", () => {});
pipeline.stage("true", () => run(["true"]));
pipeline.stage("legacy", async () => { await Deno.run({ cmd: ["true"] }).status(); });
export default pipeline;
"""


def _packaged_deno():
    import deno

    return deno.find_deno_bin()


def timed(command, env, rounds):
    """Run `command` `rounds` times with a control pipe on fd 3 and stdout
    discarded, as the platform would; return (median, minimum) in ms."""
    times = []
    for _ in range(rounds):
        read_end, write_end = os.pipe()
        start = time.perf_counter()
        pid = os.posix_spawnp(command[0], command, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, write_end, 3),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        ])
        os.close(write_end)
        while os.read(read_end, 65536):
            pass
        _, status = os.waitpid(pid, 0)
        times.append((time.perf_counter() - start) * 1000)
        os.close(read_end)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{command} failed")
    return statistics.median(times), min(times)


def main():
    deno = sys.argv[1] if len(sys.argv) > 1 else (shutil.which("deno") or _packaged_deno())
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    workspace = tempfile.mkdtemp(prefix="deno-ci-bench-")
    os.chdir(workspace)
    with open("deno-pipeline.ts", "w") as file:
        file.write(PIPELINE)
    runner = os.path.join(SDK, "runner.ts")
    import_map = subprocess.run(
        [deno, "run", "--no-prompt", "--no-config", runner, "import-map", "deno-pipeline.ts"],
        check=True, capture_output=True, text=True).stdout
    with open("import_map.json", "w") as file:
        file.write(import_map)
    plan = json.loads(subprocess.run(
        [deno, "run", "--no-prompt", "--no-config", "--import-map=import_map.json", runner, "plan",
         "deno-pipeline.ts"], check=True, capture_output=True, text=True).stdout)
    flags = {stage["name"]: stage["denoFlags"] for stage in plan["stages"]}
    env = dict(os.environ, DENO_CI_CONTROL_FD="3", DENO_CI_WORKSPACE=workspace,
               DENO_CI_RUN_ID="bench", DENO_NO_UPDATE_CHECK="1")

    def exec_command(stage):
        return [deno, "run", "--no-prompt", "--no-config", "--no-check", *flags[stage],
                "--import-map=import_map.json", runner, "exec", "deno-pipeline.ts", "--stage", stage]

    timed(exec_command("noop"), env, 3)  # fill Deno's module cache
    with open("empty.ts", "w") as file:
        file.write("")
    bare = timed(["true"], env, rounds)
    print(f"bare 'true':                 median {bare[0]:6.1f} ms  min {bare[1]:6.1f} ms")
    empty = timed([deno, "run", "--no-config", "empty.ts"], env, rounds)
    print(f"deno run of an empty file:   median {empty[0]:6.1f} ms  min {empty[1]:6.1f} ms")
    for stage in ("noop", "true", "legacy"):
        median, minimum = timed(exec_command(stage), env, rounds)
        label = f"exec stage '{stage}':"
        print(f"{label:28} median {median:6.1f} ms  min {minimum:6.1f} ms"
              f"  overhead {median - bare[0]:6.1f} ms")
    shutil.rmtree(workspace)


if __name__ == "__main__":
    main()
