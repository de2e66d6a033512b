from pathlib import Path

from jobs.stage_execution import StageContext, stage_environment


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
