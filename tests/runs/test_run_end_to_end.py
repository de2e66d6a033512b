"""A run from a real git repository, through the CLI, the queue, a real worker and the sandbox."""

import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from flask import current_app

from app.extensions import db
from app.models import Run
from app.runs.logs import read_lines
from tests.conftest import ROOT, wait_for
from tests.sample_projects import prd_sample_project


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def log_text(run_id: int) -> str:
    """Return the run's stored log without colour codes (which the log keeps on purpose)."""
    return ANSI_ESCAPE.sub("", "\n".join(line["text"] for line in read_lines(db.engine, run_id, 0, 100_000)))


def stage_statuses(run: Run) -> dict[str, str]:
    return {stage.name: stage.status for stage in run.stages}


def latest_run() -> Run:
    db.session.expire_all()
    return db.session.scalars(db.select(Run).order_by(Run.id.desc())).first()


def test_prd_sample_run_succeeds_with_test_output(workers, make_repo):
    repo = make_repo(prd_sample_project())
    added = cli("project", "add", "sample", "--repo", str(repo))
    assert added.returncode == 0, added.stderr

    result = cli("trigger", "sample", "--branch", "main", "--wait")

    assert result.returncode == 0, result.stdout + result.stderr
    run = latest_run()
    assert run.status == "success"
    assert stage_statuses(run) == {"Build": "success", "Test": "success", "Deploy": "success"}
    text = log_text(run.id)
    assert "add sums two numbers ... ok" in text
    assert "deploying release" in text
    assert "[Test]" in result.stdout
    # Workers remove the run's folder, with any spare workspace no stage took, once the run ended.
    run_folder = Path(current_app.config["WORKSPACES_DIR"]) / f"run-{run.id}"
    deadline = time.monotonic() + 10
    while run_folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not run_folder.exists()


def test_failing_test_stops_before_deploy(workers, make_repo):
    repo = make_repo(prd_sample_project(failing=True))
    assert cli("project", "add", "broken", "--repo", str(repo)).returncode == 0

    result = cli("trigger", "broken", "--wait")

    assert result.returncode == 1
    run = latest_run()
    assert run.status == "failed"
    statuses = stage_statuses(run)
    assert statuses["Test"] == "failed"
    assert statuses["Deploy"] == "skipped"
    text = log_text(run.id)
    assert "expected 6, got 5" in text
    assert "deploying release" not in text


COUNTING_PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("count", { cache: { paths: ["cachedir"] } }, () => {
  Deno.mkdirSync("cachedir", { recursive: true });
  Deno.writeTextFileSync("cachedir/log", "run\\n", { append: true });
  console.log(`runs seen: ${Deno.readTextFileSync("cachedir/log").trim().split("\\n").length}`);
});
'''


def test_cache_paths_kept_between_runs(workers, make_repo):
    repo = make_repo({"deno-pipeline.ts": COUNTING_PIPELINE})
    assert cli("project", "add", "counting", "--repo", str(repo)).returncode == 0

    first = cli("trigger", "counting", "--wait")
    second = cli("trigger", "counting", "--wait")

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "runs seen: 2" in log_text(latest_run().id)


SECRETS_PIPELINE = '''import { Pipeline, run } from "deno-ci";

export default new Pipeline().stage("use", { secrets: ["API_TOKEN", "NOT_SET_TOKEN"] }, async () => {
  await run("echo token length ${#API_TOKEN}, other ${NOT_SET_TOKEN:-empty}");
});
'''


def test_stage_is_told_of_unset_secrets(workers, make_repo):
    from app import secret_store
    from app.models import Project

    repo = make_repo({"deno-pipeline.ts": SECRETS_PIPELINE})
    assert cli("project", "add", "secretive", "--repo", str(repo)).returncode == 0
    project = db.session.scalar(db.select(Project).where(Project.name == "secretive"))
    secret_store.set_secret(project, "API_TOKEN", "token-value-123", "test")

    result = cli("trigger", "secretive", "--wait")

    assert result.returncode == 0, result.stdout + result.stderr
    text = log_text(latest_run().id)
    assert "token length 15, other empty" in text
    assert "Secret NOT_SET_TOKEN is not set in project 'secretive'" in text
    assert "API_TOKEN is not set" not in text


ARTIFACT_PIPELINE = '''import { artifactPath, Pipeline, publishArtifact } from "deno-ci";

export default new Pipeline()
  .stage("build", () => {
    Deno.mkdirSync("dist", { recursive: true });
    Deno.writeTextFileSync("dist/app.js", "console.log('built');");
    Deno.symlinkSync("app.js", "dist/main.js");
    Deno.symlinkSync("/etc/passwd", "dist/passwd");
    publishArtifact("dist", ["dist"]);
  })
  .stage("use", () => {
    console.log(`fetched: ${Deno.readTextFileSync(`${artifactPath("dist")}/dist/app.js`)}`);
  });
'''


def test_artifact_fetched_by_later_stage_and_downloaded(workers, make_repo, db_app, admin):
    repo = make_repo({"deno-pipeline.ts": ARTIFACT_PIPELINE})
    assert cli("project", "add", "artifacts", "--repo", str(repo)).returncode == 0

    result = cli("trigger", "artifacts", "--wait")

    assert result.returncode == 0, result.stdout + result.stderr
    run = latest_run()
    assert "fetched: console.log('built');" in log_text(run.id)
    assert "Artifact 'dist' leaves out the link dist/passwd -> /etc/passwd" in log_text(run.id)
    client = db_app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(admin.id)
    for path in (f"/api/v1/runs/{run.id}/artifacts/dist", f"/runs/{run.id}/artifacts/dist"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "application/gzip"
        with tarfile.open(fileobj=io.BytesIO(response.data), mode="r:gz") as archive:
            assert archive.extractfile("dist/app.js").read() == b"console.log('built');"
            assert archive.getmember("dist/main.js").linkname == "app.js"
            assert "dist/passwd" not in archive.getnames()
    assert client.get(f"/api/v1/runs/{run.id}/artifacts/missing").status_code == 404


TYPE_ERROR_PIPELINE = '''import { Pipeline } from "deno-ci";

const count: number = "three";
export default new Pipeline().stage("build", () => console.log(count));
'''


def test_invalid_pipeline_names_repository_file(workers, make_repo):
    repo = make_repo({"deno-pipeline.ts": TYPE_ERROR_PIPELINE})
    assert cli("project", "add", "typed", "--repo", str(repo)).returncode == 0

    result = cli("trigger", "typed", "--wait")

    assert result.returncode == 1
    run = latest_run()
    assert run.status == "error"
    assert run.status_reason.startswith("The pipeline 'deno-pipeline.ts' is invalid: deno-pipeline.ts:3:")
    text = log_text(run.id)
    assert "pipeline error: deno-pipeline.ts:3:" in text
    assert current_app.config["DATA_DIR"] not in text
    assert current_app.config["DATA_DIR"] not in run.status_reason
    # Nothing of the run stays in the workers' folder.
    run_folder = Path(current_app.config["WORKSPACES_DIR"]) / f"run-{run.id}"
    wait_for(lambda: not run_folder.exists(), timeout=10)


def test_ctrl_c_before_run_exists(db_app, monkeypatch):
    from click.testing import CliRunner

    from app.cli import main, platform

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(platform, "platform_app", interrupted)
    result = CliRunner().invoke(main, ["trigger", "anything", "--wait"])

    assert result.exit_code == 130
    assert "Cancelled before the run was created." in result.output
    assert latest_run() is None


def test_ctrl_c_stops_following_not_the_run(workers, make_repo):
    pipeline = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("slow", async () => {
  console.log("started");
  await new Promise((resolve) => setTimeout(resolve, 4000));
});
'''
    assert cli("project", "add", "follow", "--repo", str(make_repo({"deno-pipeline.ts": pipeline}))).returncode == 0
    # A shell running this suite in the background ignores SIGINT for its children, and Python
    # then keeps ignoring it: the command gets the default back, as in a terminal.
    following = subprocess.Popen([sys.executable, "-m", "app.cli", "trigger", "follow", "--wait"], cwd=ROOT,
                                 env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in following.stdout:
        if "started" in line:
            break
    following.send_signal(signal.SIGINT)
    _, stderr = following.communicate(timeout=30)

    assert following.returncode == 130, stderr
    assert "it goes on" in stderr
    assert "Traceback" not in stderr
    run = latest_run()
    assert run.status == "running"
