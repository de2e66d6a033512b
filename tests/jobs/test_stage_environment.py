import json
from pathlib import Path

from app.runs.events import bounded_changed_files, make_event
from jobs.stage_execution import StageContext, stage_environment
from jobs.workspace import changed_files
from tests.conftest import commit_all, git, merge_branch, write_files


def test_forged_plan_cannot_change_runner_variables():
    stage = {"name": "build", "options": {"env": {"DENO_CI_CONTROL_FD": "1", "DENO_DIR": "/x", "CI": "no",
                                                  "PATH": "/opt/tools:/usr/bin", "GREETING": "hello"}}}
    context = StageContext(run_id="7", pipeline_path="deno-pipeline.ts", event={}, executor=None)
    env = stage_environment(stage, context, Path("/work/ws"), Path("/work/deno-dir"))
    assert env["DENO_CI_CONTROL_FD"] == "3"
    assert env["DENO_DIR"] == "/work/deno-dir"
    assert env["CI"] == "true"
    assert env["PATH"] == "/opt/tools:/usr/bin"
    assert env["GREETING"] == "hello"


def test_longest_event_fits_one_variable():
    # Linux takes at most 128 KiB in one environment variable, name included.
    event = make_event("push", branch="main", author="\x01" * 50_000, message="\U0001F600\x02" * 50_000,
                       changed_files=[f"src/{'é' * 200}-{index}.ts" for index in range(10_000)])
    assert event["changedFiles"] is None
    context = StageContext(run_id="7", pipeline_path="deno-pipeline.ts", event=event, executor=None)
    env = stage_environment({"name": "build", "options": {}}, context, Path("/work/ws"), Path("/work/deno-dir"))
    assert len(f"DENO_CI_EVENT={env['DENO_CI_EVENT']}".encode()) < 128 * 1024
    assert json.loads(env["DENO_CI_EVENT"])["message"].startswith("\U0001F600\x02")


def test_changed_files_bounded():
    files = [f"src/module-{index}.ts" for index in range(1000)]
    assert bounded_changed_files(files) == files
    assert bounded_changed_files(files * 3) is None
    assert bounded_changed_files(None) is None


def test_changed_files_keep_spaces_and_letters(make_repo):
    repo = make_repo({"a.ts": ""})
    before = git(repo, "rev-parse", "HEAD")
    write_files(repo, {"docs/release notes.md": "x", "docs/café.md": "y", "src/a b/c.ts": "z"})
    after = commit_all(repo, "Add docs")
    assert sorted(changed_files(repo, before, after)) == ["docs/café.md", "docs/release notes.md", "src/a b/c.ts"]
    assert sorted(changed_files(repo, None, after)) == ["docs/café.md", "docs/release notes.md", "src/a b/c.ts"]


def test_merge_commit_lists_merged_files(make_repo):
    repo = make_repo({"a.ts": ""})
    merge = merge_branch(repo, {"docs/guide.md": "x"}, {"notes.txt": "y"})
    assert changed_files(repo, None, merge) == ["docs/guide.md"]
