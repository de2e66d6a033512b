"""`deno-ci run` and `deno-ci validate` on real git repositories of small Deno projects."""

import http.server
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, git, merge_branch, serve_in_thread, write_files
from jobs.stage_execution import PREPARED_DURING_PLANNING
from tests.sample_projects import LIBRARY_MAIN, PASSING_TEST, prd_sample_project

PARALLEL_PIPELINE = '''import { Pipeline, run } from "deno-ci";

export default new Pipeline()
  .stage("install", () => console.log("installing"))
  .parallel("checks", (group) => {
    group.stage("lint", () => console.log("linting"));
    group.stage("test", () => run(["deno", "test", "--quiet"]));
  })
  .stage("publish", () => console.log("publishing"));
'''

TEMPLATE_PIPELINE = '''import { Pipeline } from "deno-ci";
import { denoLibrary } from "deno-ci/templates";
import { announce } from "./ci/announce.ts";

const pipeline = new Pipeline();
denoLibrary(pipeline, { entryPoints: ["main.ts"] });
announce(pipeline);
export default pipeline;
'''

TEAM_TEMPLATE = '''import type { Pipeline } from "deno-ci";

/** The team's own template: one stage that says the library passed. */
export function announce(pipeline: Pipeline): void {
  pipeline.stage("announce", () => console.log("library checks passed"));
}
'''

BROKEN_NEEDS = '''import { Pipeline } from "deno-ci";

export default new Pipeline()
  .stage("build", () => {})
  .stage("test", { needs: ["bild"] }, () => {});
'''


def deno_ci(*args: str, cwd=ROOT, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `deno-ci` with `args` in `env`, or in this process's environment when `env` is None."""
    environment = env if env is not None else os.environ.copy()
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def local_data(tmp_path):
    return str(tmp_path / "local-data")


def test_prd_sample_runs_unchanged(make_repo, local_data):
    repo = make_repo(prd_sample_project())
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[Test] add sums two numbers ... " in result.stdout
    assert "[Deploy] deploying release" in result.stdout
    assert "run success" in result.stdout


def test_failing_test_stops_at_test(make_repo, local_data):
    repo = make_repo(prd_sample_project(failing=True))
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 1
    assert "expected 6, got 5" in result.stdout
    assert "deploying release" not in result.stdout
    assert "run failed" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith("Test ") and "failed" in line for line in lines)
    assert any(line.startswith("Deploy ") and "skipped" in line for line in lines)
    # The runner's reason is printed once, followed by the status alone.
    reasons = [line for line in lines if "started with Deno.run exited with code" in line]
    assert len(reasons) == 1, reasons
    assert "[Test] failed" in lines


def test_parallel_group_runs_every_stage(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": PARALLEL_PIPELINE, "main.ts": LIBRARY_MAIN, "main_test.ts": PASSING_TEST})
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    for prefix in ("[install] installing", "[lint] linting", "[publish] publishing"):
        assert prefix in result.stdout


def test_template_and_team_module(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": TEMPLATE_PIPELINE, "ci/announce.ts": TEAM_TEMPLATE,
                      "main.ts": LIBRARY_MAIN, "main_test.ts": PASSING_TEST})
    validated = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    assert validated.returncode == 0, validated.stderr
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[announce] library checks passed" in result.stdout


def test_validate_reports_unknown_need(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": BROKEN_NEEDS})
    result = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    assert result.returncode == 1
    assert "deno-pipeline.ts:5:" in result.stderr
    assert "bild" in result.stderr


def _serve_on_loopback(handler: type) -> http.server.ThreadingHTTPServer:
    """Start an HTTP server on 127.0.0.1 with `handler` in a thread; the caller shuts it down."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A request still waiting in a silent handler must not hold up the shutdown.
    server.daemon_threads = True
    serve_in_thread(server)
    return server


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def module_server():
    """An HTTP server on 127.0.0.1 serving one TypeScript module at /greeting.ts; yields its port."""

    class Module(_QuietHandler):
        def do_GET(self):
            body = b'export const greeting: string = "hello from a remote module";\n'
            self.send_response(200 if self.path == "/greeting.ts" else 404)
            self.send_header("Content-Type", "application/typescript")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _serve_on_loopback(Module)
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def silent_server():
    """An HTTP server on 127.0.0.1 that accepts requests and sends no response for a minute; yields its port."""

    class Silent(_QuietHandler):
        def do_GET(self):
            time.sleep(60)

    server = _serve_on_loopback(Silent)
    yield server.server_address[1]
    server.shutdown()


REMOTE_IMPORT_PIPELINE = '''import { Pipeline } from "deno-ci";
import { greeting } from "http://127.0.0.1:{port}/greeting.ts";

export default new Pipeline().stage("greet", () => console.log(greeting));
'''


def test_pipeline_imports_module_from_any_host(make_repo, local_data, module_server):
    repo = make_repo({"deno-pipeline.ts": REMOTE_IMPORT_PIPELINE.replace("{port}", str(module_server))})
    validated = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    assert validated.returncode == 0, validated.stderr
    # Unsandboxed: a sandbox cannot reach the host's loopback, where this test's server is.
    result = deno_ci("--data", local_data, "run", str(repo), "--executor", "unsandboxed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[greet] hello from a remote module" in result.stdout


def test_validate_reports_failed_remote_import_once(make_repo, local_data):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    repo = make_repo({"deno-pipeline.ts": REMOTE_IMPORT_PIPELINE.replace("{port}", str(closed_port))})
    result = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{repo / 'deno-pipeline.ts'}:2:26: Import 'http://127.0.0.1:{closed_port}/greeting.ts' failed: "
        "Connection refused (os error 111)"]


def test_validate_places_stage_limit(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
for (let index = 0; index < 300; index++) pipeline.stage(`stage ${index}`, () => {});
export default pipeline;
'''
    repo = make_repo({"deno-pipeline.ts": pipeline})
    result = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    assert result.returncode == 1
    assert "deno-pipeline.ts:4:" in result.stderr
    assert "300 stages; at most 256" in result.stderr


def test_clean_tree_is_type_checked_once(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": PARALLEL_PIPELINE, "main.ts": LIBRARY_MAIN, "main_test.ts": PASSING_TEST})
    assert deno_ci("--data", local_data, "run", str(repo)).returncode == 0
    markers = list(Path(local_data, "plan-caches").glob("*.checked/*"))
    assert len(markers) == 1

    (repo / "notes.txt").write_text("not committed")
    assert deno_ci("--data", local_data, "run", str(repo)).returncode == 0
    assert list(Path(local_data, "plan-caches").glob("*.checked/*")) == markers


# Each planning gives the stage a new value, so equal values show that a plan was taken, not made.
RANDOM_PLAN_PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("build", { env: { PLANNED: crypto.randomUUID() } }, () => {
  console.log(`planned ${Deno.env.get("PLANNED")}`);
});
'''


def _planned_value(repo: Path, local_data: str, *options: str) -> str:
    result = deno_ci("--data", local_data, "run", str(repo), *options)
    assert result.returncode == 0, result.stderr
    return next(line.split("planned ", 1)[1] for line in result.stdout.splitlines() if "planned " in line)


def test_clean_tree_takes_last_plan(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    first = _planned_value(repo, local_data)
    assert _planned_value(repo, local_data) == first

    (repo / "notes.txt").write_text("committed next")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "-m", "add notes")
    after_commit = _planned_value(repo, local_data)
    assert after_commit != first
    assert _planned_value(repo, local_data) == after_commit


def test_edit_during_planning_is_not_kept(make_repo, local_data):
    pipeline = RANDOM_PLAN_PIPELINE.replace("export default", "const until = Date.now() + 1000;\nwhile (Date.now() < until) {}\nexport default")
    repo = make_repo({"deno-pipeline.ts": pipeline})
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not _planner_running(str(repo).encode()):
        assert process.poll() is None, process.communicate()
    (repo / "notes.txt").write_text("saved while the pipeline was planned")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    first = next(line.split("planned ", 1)[1] for line in stdout.splitlines() if "planned " in line)
    # The type check may have read the saved edit too, so its pass is not recorded for the tree.
    assert list(Path(local_data, "plan-caches").glob("*.checked/*")) == []

    (repo / "notes.txt").unlink()
    assert _planned_value(repo, local_data) != first


def test_changed_tree_is_planned_again(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    first = _planned_value(repo, local_data)
    (repo / "notes.txt").write_text("not committed")
    untracked = _planned_value(repo, local_data)
    assert untracked != first
    assert _planned_value(repo, local_data) != untracked


def test_ignored_folder_is_planned_and_copied(make_repo, local_data):
    outer = make_repo({".gitignore": "inner/\n"})
    inner = outer / "inner"
    write_files(inner, {"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    first = _planned_value(inner, local_data)
    assert _planned_value(inner, local_data) != first


def test_malformed_last_plan_is_planned_again(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    _planned_value(repo, local_data)
    (last_plan_file,) = Path(local_data, "plan-caches").glob("*.last-plan.json")
    document = json.loads(last_plan_file.read_text())
    stage = document["plan"]["stages"][0]
    edited = [{**document, "plan": plan} for plan in ({"stages": "x"}, {"stages": [{"name": "build"}]}, {})]
    edited.append({**document, "plan": {**document["plan"], "stages": [{**stage, "options": {"timeout": "abc"}}]}})
    edited.append({**document, "key": "other", "plan": {"stages": [{"name": "x", "needs": [], "options": {}}]}})
    edited.append({**document, "toolchain": "older"})
    for broken in edited:
        last_plan_file.write_text(json.dumps(broken))
        result = deno_ci("--data", local_data, "run", str(repo))
        assert result.returncode == 0, result.stderr
        assert "[build] planned " in result.stdout


def test_unwritable_last_plan_is_a_warning(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    _planned_value(repo, local_data)
    (last_plan_file,) = Path(local_data, "plan-caches").glob("*.last-plan.json")
    last_plan_file.unlink()
    last_plan_file.mkdir()
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot keep the plan of" in result.stderr
    assert list(last_plan_file.parent.glob(".last-plan-*")) == []


def test_unsandboxed_run_is_planned_again(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    first = _planned_value(repo, local_data, "--executor", "unsandboxed")
    assert _planned_value(repo, local_data, "--executor", "unsandboxed") != first


def test_other_branch_is_planned_again(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    first = _planned_value(repo, local_data)
    assert _planned_value(repo, local_data, "--branch", "feature") != first


def test_scheduled_run_is_always_planned(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": RANDOM_PLAN_PIPELINE})
    first = _planned_value(repo, local_data, "--event", "schedule")
    assert _planned_value(repo, local_data, "--event", "schedule") != first


HELD_PIPELINE = '''import { Pipeline } from "deno-ci";

console.log("pipeline loaded");

export default new Pipeline()
  .stage("first", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    FAIL_FIRST
    console.log("first done");
  })
  .stage("second", () => console.log("second ran"));
'''


def _runner_of_stage(stage: str) -> bool:
    """Return whether a runner process for `stage` exists on this machine."""
    return stage in _runner_stages()


def _runner_stages() -> set[str]:
    """Return the names of the stages whose runner processes exist on this machine."""
    names = set()
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"exec" in arguments and b"--stage" in arguments[:-1]:
            names.add(arguments[arguments.index(b"--stage") + 1].decode())
    return names


def _run_watching_for_stage(repo: Path, local_data: str, stage: str):
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                               env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_early = False
    while process.poll() is None:
        seen_early = seen_early or _runner_of_stage(stage)
        if seen_early:
            break
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr, seen_early


def test_next_stage_prepared_while_previous_runs(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": HELD_PIPELINE.replace("FAIL_FIRST", "")})
    code, stdout, stderr, seen_early = _run_watching_for_stage(repo, local_data, "second")
    assert code == 0, stderr
    assert seen_early
    lines = stdout.splitlines()
    # The held stage imported the pipeline only when it ran, after "first" ended.
    assert lines.index("[second] pipeline loaded") > lines.index("[first] first done")
    assert lines.count("[second] pipeline loaded") == 1
    assert "[second] second ran" in lines


def test_prepared_stage_after_failure_runs_nothing(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": HELD_PIPELINE.replace("FAIL_FIRST", 'throw new Error("first failed on purpose");')})
    code, stdout, stderr, seen_early = _run_watching_for_stage(repo, local_data, "second")
    assert code == 1
    assert seen_early
    assert "[first] pipeline loaded" in stdout
    assert "[second] pipeline loaded" not in stdout
    assert "second ran" not in stdout
    assert any(line.startswith("second") and "skipped" in line for line in stdout.splitlines())
    assert not _runner_of_stage("second")


def test_chain_of_stages_prepared_while_first_runs(make_repo, local_data):
    pipeline = HELD_PIPELINE.replace("FAIL_FIRST", "").replace(
        '.stage("second", () => console.log("second ran"));',
        '.stage("second", () => console.log("second ran"))\n  .stage("third", () => console.log("third ran"));')
    repo = make_repo({"deno-pipeline.ts": pipeline})
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                               env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    together = False
    while process.poll() is None and not together:
        together = {"first", "third"} <= _runner_stages()
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    # "third" needs "second", which was only held then: both sandboxes were made while "first" ran.
    assert together
    lines = stdout.splitlines()
    assert lines.index("[third] pipeline loaded") > lines.index("[second] second ran")
    assert "[third] third ran" in lines


GUESS_PIPELINE = '''import { Pipeline } from "deno-ci";

console.log("pipeline loaded");

export default new Pipeline()
  .stage("main only", { branches: ["main"] }, () => console.log("ran main only"))
  .stage("everywhere", { needs: [] }, () => console.log("ran everywhere"));
'''


def test_second_run_prepares_first_stage_while_planning(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    first = deno_ci("--data", local_data, "run", str(repo))
    second = deno_ci("--data", local_data, "run", str(repo))
    assert first.returncode == 0, first.stderr
    assert PREPARED_DURING_PLANNING not in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"[main only] {PREPARED_DURING_PLANNING}" in second.stdout.splitlines()
    assert second.stdout.count("ran main only") == 1


def test_changed_tree_still_prepares_first_stage(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    assert deno_ci("--data", local_data, "run", str(repo)).returncode == 0
    (repo / "notes.txt").write_text("not committed")
    second = deno_ci("--data", local_data, "run", str(repo))
    assert second.returncode == 0, second.stderr
    assert f"[main only] {PREPARED_DURING_PLANNING}" in second.stdout.splitlines()


def test_missing_docker_engine_is_a_message(make_repo, local_data, tmp_path):
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    result = subprocess.run([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo), "--executor", "docker"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Error: Cannot use the docker executor" in result.stderr
    assert "choose the 'bubblewrap' executor" in result.stderr


def test_first_stage_made_ahead_sees_directory_and_cache(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("first", () => {
  const marker = `${Deno.env.get("DENO_DIR")}/marker.txt`;
  let cached = "nothing";
  try {
    cached = Deno.readTextFileSync(marker).trim();
  } catch {
    Deno.writeTextFileSync(marker, "cached\\n");
  }
  console.log(`data: ${Deno.readTextFileSync("data.txt").trim()}, cache: ${cached}`);
});
'''
    repo = make_repo({"deno-pipeline.ts": pipeline, "data.txt": "from the directory\n"})
    first = deno_ci("--data", local_data, "run", str(repo))
    # Made before the directory and the dependency cache were copied into its folders.
    second = deno_ci("--data", local_data, "run", str(repo))
    assert first.returncode == 0, first.stderr
    assert "[first] data: from the directory, cache: nothing" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"[first] {PREPARED_DURING_PLANNING}" in second.stdout.splitlines()
    assert "[first] data: from the directory, cache: cached" in second.stdout


def test_first_stage_made_ahead_of_linked_pipeline_file(make_repo, local_data):
    repo = make_repo({"ci/pipeline.ts": GUESS_PIPELINE})
    (repo / "deno-pipeline.ts").symlink_to("ci/pipeline.ts")
    git(repo, "add", "deno-pipeline.ts")
    git(repo, "commit", "-q", "-m", "link the pipeline")
    deno_ci("--data", local_data, "run", str(repo))
    second = deno_ci("--data", local_data, "run", str(repo))
    assert second.returncode == 0, second.stderr
    assert f"[main only] {PREPARED_DURING_PLANNING}" in second.stdout.splitlines()
    assert "[main only] ran main only" in second.stdout


def test_first_stage_guess_dropped_when_plan_differs(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    assert deno_ci("--data", local_data, "run", str(repo)).returncode == 0
    other = deno_ci("--data", local_data, "run", str(repo), "--branch", "feature")
    assert other.returncode == 0, other.stderr
    assert PREPARED_DURING_PLANNING not in other.stdout
    assert "ran main only" not in other.stdout
    assert other.stdout.count("pipeline loaded") == 1
    assert not _runner_of_stage("main only")


def test_named_secrets_are_reported_unset(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("deploy", { secrets: ["DEPLOY_TOKEN"] }, () => {
  console.log(`token set: ${Deno.env.get("DEPLOY_TOKEN") !== undefined}`);
});
'''
    result = deno_ci("--data", local_data, "run", str(make_repo({"deno-pipeline.ts": pipeline})))
    assert result.returncode == 0, result.stderr
    assert "[deploy] Secret DEPLOY_TOKEN is not set: deno-ci run has no secrets store" in result.stdout
    assert "[deploy] token set: false" in result.stdout


def test_cache_paths_kept_between_runs(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("count", { cache: { paths: ["cachedir"] } }, () => {
  Deno.mkdirSync("cachedir", { recursive: true });
  Deno.writeTextFileSync("cachedir/log", "run\\n", { append: true });
  console.log(`runs seen: ${Deno.readTextFileSync("cachedir/log").trim().split("\\n").length}`);
});
'''
    repo = make_repo({"deno-pipeline.ts": pipeline})
    first = deno_ci("--data", local_data, "run", str(repo))
    second = deno_ci("--data", local_data, "run", str(repo))
    assert first.returncode == 0, first.stderr
    assert "[count] runs seen: 1" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "[count] runs seen: 2" in second.stdout


def _planner_running(marker: bytes) -> bool:
    """Return whether a runner process exists that plans a pipeline file with `marker` in its path.

    setpriv, and the shell it starts before Deno, count too.
    """
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"plan" in arguments and any(marker in argument for argument in arguments):
            return True
    return False


BUSY_PIPELINE = '''import { Pipeline } from "deno-ci";

while (true) {}
export default new Pipeline().stage("never", () => {});
'''


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_cancel_while_planning_ends_planner(make_repo, local_data, tmp_path, signal_number):
    repo = make_repo({"deno-pipeline.ts": BUSY_PIPELINE})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                               env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    while not _planner_running(str(repo).encode()):
        assert process.poll() is None, process.communicate()
    process.send_signal(signal_number)
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # Where it waits: the command prints its threads' stacks on SIGUSR1.
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)
        process.kill()
        pytest.fail(f"still running 30 s after the signal:\n{process.communicate()[1]}")
    assert process.returncode == 128 + signal_number, stderr
    assert "Cancelled before any stage started." in stderr
    assert "Traceback" not in stderr
    assert not _planner_running(str(repo).encode())
    assert list(scratch.iterdir()) == []


def test_interrupted_validate_exits_130(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": BUSY_PIPELINE})
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "validate",
                                str(repo / "deno-pipeline.ts")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    while not _planner_running(str(repo).encode()):
        assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Aborted!" in stderr
    assert "Traceback" not in stderr


def test_interrupt_during_imports_exits_130():
    # Ctrl-C lands in the imports when it comes in the program's first ~40 ms; this finder
    # raises it there every time.
    program = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "click":
            raise KeyboardInterrupt

sys.meta_path.insert(0, Interrupt())
from app.command import main
main()
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert result.stderr == ""


def test_killed_command_takes_planner_with_it(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": BUSY_PIPELINE})
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                               env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed as soon as setpriv shows, which may be before it asked the kernel to kill it with its parent.
    while not _planner_running(str(repo).encode()):
        assert process.poll() is None
    process.kill()
    process.wait()
    # The planning timeout is 60 s: ending within 30 s shows the kernel ended it with its parent.
    deadline = time.monotonic() + 30
    while _planner_running(str(repo).encode()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _planner_running(str(repo).encode())


def test_killed_with_parent_runs_command(tmp_path):
    from app.pipelines.runner import _killed_with_parent

    marker = tmp_path / "ran"
    subprocess.run(_killed_with_parent(["touch", str(marker)]), check=True)
    assert marker.exists()


def test_killed_with_parent_skips_orphan(tmp_path):
    from app.pipelines.runner import _killed_with_parent

    marker = tmp_path / "ran"
    command = _killed_with_parent(["touch", str(marker)])
    # Started by another process than the one that built the command line: to the command
    # this looks like its parent died before setpriv asked the kernel to kill it with it.
    starter = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", starter, *command])
    assert result.returncode == 1
    assert not marker.exists()


def test_run_removes_folder_of_killed_run(make_repo, local_data, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    command = [sys.executable, "-m", "app.cli", "--data", local_data, "run"]
    killed = subprocess.Popen([*command, str(make_repo({"deno-pipeline.ts": BUSY_PIPELINE}))], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(scratch.glob("deno-ci-local-*/deno-ci-run-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.kill()
    killed.wait()
    [left] = scratch.glob("deno-ci-local-*")
    # Older than a folder whose run may not have locked it yet.
    an_hour_ago = time.time() - 3600
    os.utime(left / ".owner.lock", (an_hour_ago, an_hour_ago))
    young = scratch / "deno-ci-local-young"
    young.mkdir()
    result = subprocess.run([*command, str(make_repo({"deno-pipeline.ts": GUESS_PIPELINE}))], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(scratch.iterdir()) == [young]


def test_run_keeps_folder_of_live_run(make_repo, local_data, tmp_path):
    import fcntl

    scratch = tmp_path / "tmp"
    live = scratch / "deno-ci-local-live"
    live.mkdir(parents=True)
    lock = os.open(live / ".owner.lock", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    an_hour_ago = time.time() - 3600
    os.utime(live / ".owner.lock", (an_hour_ago, an_hour_ago))
    try:
        result = subprocess.run([sys.executable, "-m", "app.cli", "--data", local_data, "run",
                                 str(make_repo({"deno-pipeline.ts": GUESS_PIPELINE}))],
                                cwd=ROOT, env={**os.environ, "TMPDIR": str(scratch)}, capture_output=True, text=True,
                                timeout=120)
    finally:
        os.close(lock)
    assert result.returncode == 0, result.stderr
    assert sorted(scratch.iterdir()) == [live]


@pytest.mark.parametrize("arguments, message", [
    (["--branch", "a..b"], "Invalid value for --branch: 'a..b' is not a valid Git ref name"),
    (["--event", "tag", "--tag", "v1 x"], "Invalid value for --tag: 'v1 x' is not a valid Git ref name"),
    (["--event", "tag"], "a tag event needs the tag's name: pass --tag NAME."),
    (["--event", "tag", "--tag", "v1", "--branch", "main"], "a tag push has no branch: pass --tag or --branch, not both."),
])
def test_bad_event_options_are_rejected(make_repo, local_data, arguments, message):
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})

    result = deno_ci("--data", local_data, "run", str(repo), *arguments)

    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_pipeline_path_is_read_as_its_file(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    result = deno_ci("--data", local_data, "run", str(repo), "--pipeline", "missing/../deno-pipeline.ts")
    slash = deno_ci("--data", local_data, "run", str(repo), "--pipeline", "deno-pipeline.ts/")
    assert result.returncode == 0, result.stderr
    assert "ran everywhere" in result.stdout
    assert slash.returncode == 2
    assert "is not a file in" in slash.stderr


def test_pipeline_outside_directory_is_refused(make_repo, local_data, tmp_path):
    (tmp_path / "outside.ts").write_text(GUESS_PIPELINE)
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    outside = deno_ci("--data", local_data, "run", str(repo), "--pipeline", "../outside.ts")
    folder = deno_ci("--data", local_data, "run", str(repo), "--pipeline", ".")
    assert outside.returncode == 2
    assert "is not a path inside" in outside.stderr
    assert folder.returncode == 2
    assert "'.' is not a file in" in folder.stderr
    assert "Traceback" not in outside.stderr + folder.stderr


def test_hidden_pipeline_change_is_type_checked(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("build", () => console.log("built"));
'''
    repo = make_repo({"deno-pipeline.ts": pipeline})
    assert deno_ci("--data", local_data, "run", str(repo)).returncode == 0
    git(repo, "update-index", "--skip-worktree", "deno-pipeline.ts")
    (repo / "deno-pipeline.ts").write_text(pipeline + 'const count: number = "three";\n')
    second = deno_ci("--data", local_data, "run", str(repo))
    assert second.returncode == 1
    assert "TS2322" in second.stderr


def test_unended_output_while_planning_keeps_plan_readable(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

Deno.stdout.writeSync(new TextEncoder().encode("partial"));
export default new Pipeline().stage("build", () => console.log("built"));
'''
    repo = make_repo({"deno-pipeline.ts": pipeline})
    result = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    assert result.returncode == 0, result.stderr
    assert "deno-pipeline.ts: 1 stage, valid" in result.stdout


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_invalid_utf8_while_planning_is_read(make_repo, local_data, stream):
    pipeline = f'''import {{ Pipeline }} from "deno-ci";

Deno.{stream}.writeSync(new Uint8Array([255, 10]));
export default new Pipeline().stage("build", () => console.log("built"));
'''
    repo = make_repo({"deno-pipeline.ts": pipeline})
    validated = deno_ci("--data", local_data, "validate", str(repo / "deno-pipeline.ts"))
    ran = deno_ci("--data", local_data, "run", str(repo))
    assert validated.returncode == 0, validated.stderr
    assert "deno-pipeline.ts: 1 stage, valid" in validated.stdout
    assert ran.returncode == 0, ran.stderr
    assert "[build] built" in ran.stdout


def test_allowed_failure_is_retried(make_repo, local_data):
    pipeline = '''import { Pipeline, run } from "deno-ci";

export default new Pipeline()
  .stage("flaky", { retries: 2, allowFailure: true }, () => run("echo attempt; exit 1"));
'''
    result = deno_ci("--data", local_data, "run", str(make_repo({"deno-pipeline.ts": pipeline})))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[flaky] attempt\n") == 3
    assert any(line.startswith("flaky") and "allowed_failure" in line for line in result.stdout.splitlines())


def test_tracked_file_replaced_by_folder_or_pipe(make_repo, local_data):
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("list", () => console.log([...Deno.readDirSync("data")].map((e) => e.name)));
'''
    repo = make_repo({"deno-pipeline.ts": pipeline, "data": "a file", "pipe": "a file"})
    (repo / "data").unlink()
    (repo / "data").mkdir()
    (repo / "data" / "inside.txt").write_text("new")
    (repo / "pipe").unlink()
    os.mkfifo(repo / "pipe")
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[list] [ \"inside.txt\" ]" in result.stdout


def test_hidden_pipeline_change_is_planned(make_repo, local_data):
    # git status hides a change to a skip-worktree file, so the tree id cannot tell that
    # the pipeline changed: every local run plans again.
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("%s", () => console.log("ran %s"));
'''
    repo = make_repo({"deno-pipeline.ts": pipeline % ("alpha", "alpha")})
    first = deno_ci("--data", local_data, "run", str(repo))
    git(repo, "update-index", "--skip-worktree", "deno-pipeline.ts")
    (repo / "deno-pipeline.ts").write_text(pipeline % ("beta", "beta"))
    second = deno_ci("--data", local_data, "run", str(repo))

    assert "[alpha] ran alpha" in first.stdout
    assert second.returncode == 0, second.stdout + second.stderr
    assert "[beta] ran beta" in second.stdout


CHANGED_FILES_PIPELINE = '''import { event, Pipeline } from "deno-ci";

export default new Pipeline()
  .stage("docs", { paths: ["docs/**"] }, () => {
    console.log(`changed: ${JSON.stringify(event.changedFiles)}`);
  });
'''


def test_changed_file_names_stay_whole(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": CHANGED_FILES_PIPELINE, "docs/release notes.md": "x", "docs/café.md": "y"})
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '[docs] changed: ["deno-pipeline.ts","docs/café.md","docs/release notes.md"]' in result.stdout


def test_merge_commit_lists_merged_files(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": CHANGED_FILES_PIPELINE})
    merge_branch(repo, {"docs/guide.md": "x"}, {"notes.txt": "y"})
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '[docs] changed: ["docs/guide.md"]' in result.stdout


def test_push_of_thousands_of_files_runs(make_repo, local_data):
    # Their names as JSON pass 128 KiB, the most Linux takes in one environment variable.
    files = {f"docs/generated/page-{index:05d}-with-a-long-name.md": "" for index in range(4000)}
    repo = make_repo({"deno-pipeline.ts": CHANGED_FILES_PIPELINE, **files}, message="x" * 20_000)
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    # Too many to list: unknown, so the paths filter selects the stage.
    assert "[docs] changed: null" in result.stdout


READS_INPUT = '''import { Pipeline } from "deno-ci";

const answer = await Deno.stdin.read(new Uint8Array(16));
export default new Pipeline().stage("answer", () => console.log(`answer: ${answer}`));
'''


def test_pipeline_reading_input_does_not_wait(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": READS_INPUT})
    # Input that never ends, like an idle terminal.
    silent = subprocess.Popen(["sleep", "600"], stdout=subprocess.PIPE)
    try:
        result = subprocess.run([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                                stdin=silent.stdout, capture_output=True, text=True, timeout=45)
    finally:
        silent.kill()
        silent.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[answer] answer: null" in result.stdout


SLEEPING_PIPELINE = '''import { Pipeline, run } from "deno-ci";

export default new Pipeline().stage("wait", async () => {
  console.log("started");
  await run("sleep 60");
});
'''


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_stage_sets_exit_code(make_repo, local_data, signal_number, code):
    repo = make_repo({"deno-pipeline.ts": SLEEPING_PIPELINE})
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.strip() == "[wait] started":
            break
    process.send_signal(signal_number)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stdout + stderr
    assert "run cancelled" in stdout


MANY_LINES_PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("chatty", async () => {
  for (let line = 0; line < 20; line++) {
    console.log("line", line);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});
'''


def test_reader_leaving_early_ends_quietly(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": MANY_LINES_PIPELINE})
    # As `deno-ci run DIR | head -1`: the pipe closes after the first line.
    command = [sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)]
    result = subprocess.run(["/bin/sh", "-c", '"$@" | head -n 1', "sh", *command], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


@pytest.mark.parametrize("arguments", [["validate", "{pipeline}"], ["--data", "{data}", "run", "{repo}"]])
def test_closed_stdout_is_no_error(make_repo, local_data, arguments):
    repo = make_repo({"deno-pipeline.ts": PIPELINE_OF_ONE})
    filled = [part.format(pipeline=repo / "deno-pipeline.ts", data=local_data, repo=repo) for part in arguments]
    command = [sys.executable, "-m", "app.cli", *filled]
    result = subprocess.run(["/bin/sh", "-c", 'exec "$@" >&-', "sh", *command], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


PIPELINE_OF_ONE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("only", () => {});
'''


def test_stage_cancelled_before_it_starts_runs_nothing(make_repo, tmp_path):
    import io

    from app.local_run import LocalRun
    from app.pipelines import runner
    from app.runs.events import make_event

    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("first", { cache: { paths: ["vendor"] } }, () => console.log("first ran"));
'''
    repo = make_repo({"deno-pipeline.ts": pipeline})

    class CancelledBeforeStart(LocalRun):
        def _run_stage(self, *arguments):
            # As a Ctrl-C after the stage was found ready, while its folders are still copied.
            self.cancel()
            return super()._run_stage(*arguments)

    event = make_event("push", branch="main")
    plan = runner.plan(repo, "deno-pipeline.ts", event, tmp_path / "plan-deno-dir")
    out = io.StringIO()
    local_run = CancelledBeforeStart(repo, "deno-pipeline.ts", "bubblewrap", tmp_path / "data", out=out)
    try:
        local_run.begin(event, None)
        status, reports = local_run.execute(plan)
    finally:
        local_run.cleanup()
    assert status == "cancelled"
    assert reports[0].status == "cancelled"
    assert "first ran" not in out.getvalue()


def test_plan_that_times_out_stops_type_check(make_repo, tmp_path, monkeypatch, caplog, silent_server):
    import logging

    from app.pipelines import runner

    repo = make_repo({"deno-pipeline.ts": REMOTE_IMPORT_PIPELINE.replace("{port}", str(silent_server))})
    monkeypatch.setattr(runner, "PLAN_TIMEOUT", 2.0)
    monkeypatch.setattr(runner, "CHECK_AFTER_FAILED_PLAN", 1.0)
    caplog.set_level(logging.INFO, logger="app.pipelines.runner")
    with pytest.raises(runner.PipelineError) as raised:
        runner.plan_and_check(repo, "deno-pipeline.ts", None, tmp_path / "deno-dir")
    assert [str(problem) for problem in raised.value.problems] == [
        "deno-pipeline.ts: loading the pipeline did not finish within 2 s. Look for a remote import that does not "
        "answer, or a loop at the top level of the pipeline file or of a module it imports."]
    # Not left to run into its own timeout of several minutes.
    assert "type check of deno-pipeline.ts stopped: its plan failed 1 s ago" in caplog.text


def test_pipeline_file_linked_outside_is_explained(make_repo, local_data, tmp_path):
    outside = tmp_path / "outside.ts"
    outside.write_text(GUESS_PIPELINE)
    repo = make_repo({"README.md": "linked\n"})
    (repo / "deno-pipeline.ts").symlink_to(outside)
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 1
    assert f"deno-pipeline.ts in {repo} leads to {outside}, outside the directory, through a symbolic link" in result.stderr
    assert "--pipeline" not in result.stderr


def test_run_in_temporary_folder_with_colon(make_repo, local_data, tmp_path):
    scratch = tmp_path / "t:c"
    scratch.mkdir()
    repo = make_repo({"deno-pipeline.ts": GUESS_PIPELINE})
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "app.cli", "--data", local_data, "run", str(repo)], cwd=ROOT,
                                env={**os.environ, "TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[main only] ran main only" in result.stdout


def _deno_checking(marker: bytes) -> bool:
    """Return whether a `deno check` of a file with `marker` in its path runs (Deno itself, not setpriv or the shell)."""
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if arguments and arguments[0].endswith(b"deno") and b"check" in arguments[1:2] and any(
                marker in argument for argument in arguments):
            return True
    return False


def test_killed_validate_takes_type_check_with_it(make_repo, local_data, silent_server):
    repo = make_repo({"deno-pipeline.ts": REMOTE_IMPORT_PIPELINE.replace("{port}", str(silent_server))})
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "--data", local_data, "validate",
                                str(repo / "deno-pipeline.ts")], cwd=ROOT, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _deno_checking(str(repo).encode()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _deno_checking(str(repo).encode())
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while _deno_checking(str(repo).encode()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _deno_checking(str(repo).encode())


@pytest.mark.parametrize(("temp_folder", "reason"), [
    # Deno reads nothing under /dev without --allow-all.
    ("/dev/shm", "is under /dev"),
    # Deno's permission lists are comma-separated.
    ("{tmp}/a,b", "contains a comma"),
])
def test_unusable_tmpdir_falls_back_to_tmp(make_repo, local_data, tmp_path, temp_folder, reason):
    temp_folder = temp_folder.format(tmp=tmp_path)
    Path(temp_folder).mkdir(parents=True, exist_ok=True)
    repo = make_repo({"deno-pipeline.ts": 'import { Pipeline } from "deno-ci";\n'
                                          'export default new Pipeline().stage("only", () => console.log("ran"));\n'})
    result = deno_ci("--data", local_data, "run", str(repo), env={**os.environ, "TMPDIR": temp_folder})
    assert result.returncode == 0, result.stderr
    assert "[only] ran" in result.stdout
    assert f"the temporary folder {temp_folder} {reason}" in result.stderr


def test_data_under_dev_rejected():
    result = deno_ci("--data", "/dev/shm/deno-ci-data", "validate", "deno-pipeline.ts")
    assert result.returncode == 2
    assert "'/dev/shm/deno-ci-data' is under /dev" in result.stderr
    assert "Choose a folder elsewhere" in result.stderr
    assert not Path("/dev/shm/deno-ci-data").exists()


LIST_WORKSPACE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("list", () => {
  console.log("files: " + [...Deno.readDirSync(".")].map((entry) => entry.name).sort().join(","));
});
'''


@pytest.mark.parametrize("in_git", [True, False])
def test_default_data_folder_stays_out(make_repo, tmp_path, in_git):
    # Run inside a repository, the default data folder ./var lands in the directory itself.
    if in_git:
        directory = make_repo({"deno-pipeline.ts": LIST_WORKSPACE})
    else:
        directory = tmp_path / "plain"
        directory.mkdir()
        (directory / "deno-pipeline.ts").write_text(LIST_WORKSPACE)
    environment = {name: value for name, value in os.environ.items() if name != "DENO_CI_DATA"}
    for _ in range(2):
        result = deno_ci("run", ".", cwd=directory, env=environment)
        assert result.returncode == 0, result.stderr
        assert "[list] files: deno-pipeline.ts\n" in result.stdout
    assert (directory / "var" / "caches").is_dir()
    if in_git:
        assert git(directory, "status", "--porcelain") == ""


FORKING_PIPELINE = '''import { Pipeline, run } from "deno-ci";

export default new Pipeline().stage("fork", async () => {
  await run("for i in $(seq 100); do sleep 2 & done; wait");
});
'''


def test_process_limit_setting_reaches_stage(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": FORKING_PIPELINE})
    result = deno_ci("--data", local_data, "run", str(repo), env={**os.environ, "DENO_CI_STAGE_MAX_PROCESSES": "64"})
    if "is not enforced" in result.stdout:
        pytest.skip("no writable pids cgroup on this machine")
    assert "The stage reached its limit of 64 processes and threads" in result.stdout
    assert "raise DENO_CI_STAGE_MAX_PROCESSES" in result.stdout


LINKING_PIPELINE = '''import { Pipeline, publishArtifact } from "deno-ci";

export default new Pipeline().stage("site", async () => {
  await Deno.mkdir("dist");
  await Deno.writeTextFile("dist/index.html", "home");
  await Deno.symlink("index.html", "dist/start.html");
  await Deno.symlink("/etc/passwd", "dist/pw");
  await publishArtifact("site", ["dist"]);
});
'''


def test_artifact_link_left_out_is_logged(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": LINKING_PIPELINE})
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stderr
    assert ("[site] Artifact 'site' leaves out the link dist/pw -> /etc/passwd: an absolute link would lead out of "
            "the workspace where the artifact is unpacked") in result.stdout


def test_workspaces_setting_moves_run_folders(tmp_path, monkeypatch):
    from config import Config
    from jobs.tasks import run_workspace

    monkeypatch.setenv("DENO_CI_WORKSPACES", str(tmp_path / "fast"))
    settings = Config()
    assert settings.WORKSPACES_DIR == str(tmp_path / "fast")
    monkeypatch.delenv("DENO_CI_WORKSPACES")
    assert Config().WORKSPACES_DIR == str(Path(Config().DATA_DIR) / "workspaces")

    from flask import Flask

    app = Flask(__name__)
    app.config["WORKSPACES_DIR"] = settings.WORKSPACES_DIR
    with app.app_context():
        assert run_workspace(7) == tmp_path / "fast" / "run-7"


def test_workspaces_under_dev_rejected():
    result = deno_ci("validate", "deno-pipeline.ts", env={**os.environ, "DENO_CI_WORKSPACES": "/dev/shm/workspaces"})
    assert result.returncode == 1
    assert "DENO_CI_WORKSPACES is '/dev/shm/workspaces', under /dev" in result.stderr
