"""The platform checks the runner's plan again, since repository code could print a forged one."""

import pytest

from app.pipelines import runner
from app.pipelines.plan_check import MAX_STAGES, plan_problems


def _stage(name="build", **fields) -> dict:
    stage = {"name": name, "index": 0, "needs": [], "options": {}, "denoFlags": ["--allow-read"], "selected": True}
    stage.update(fields)
    return stage


def test_valid_plan_has_no_problems():
    plan = {"stages": [_stage("build"), _stage("test", index=1, needs=["build"])]}
    assert plan_problems(plan) == []


@pytest.mark.parametrize("name", ["evil\nname", "\x1b[31mred", "bell\x07", "right\u202eleft", "", " ", 42, None])
def test_unprintable_or_missing_name_is_rejected(name):
    problems = plan_problems({"stages": [_stage(name)]})
    assert len(problems) == 1
    assert "name" in problems[0]
    assert "\x1b" not in problems[0]
    assert "\n" not in problems[0]


@pytest.mark.parametrize("fields, expected", [
    ({"denoFlags": ["--config=/etc/passwd"]}, "--allow-* and --deny-*"),
    ({"denoFlags": "--allow-all"}, "--allow-* and --deny-*"),
    ({"needs": ["ghost"]}, "not a stage of the pipeline"),
    ({"needs": "build"}, "'needs' must be a list"),
    ({"options": {"retries": 1_000_000}}, "'retries' must be a whole number from 0 to 10"),
    ({"options": {"timeout": "soon"}}, "'timeout' must be seconds"),
    ({"options": {"timeout": 10**12}}, "'timeout' must be seconds"),
    ({"options": {"env": {"A=B": "x"}}}, "'env' must map variable names"),
    ({"options": {"env": {"A": {"nested": 1}}}}, "'env' values"),
    ({"options": {"secrets": "TOKEN"}}, "'secrets' must be a list"),
    ({"options": []}, "'options' must be an object"),
    ({"index": "0"}, "whole-number index"),
])
def test_forged_stage_field_is_rejected(fields, expected):
    problems = plan_problems({"stages": [_stage(**fields)]})
    assert any(expected in problem for problem in problems), problems


def test_duplicate_names_are_rejected():
    problems = plan_problems({"stages": [_stage("build"), _stage("build", index=1)]})
    assert problems == ["stage name 'build' is used twice; give each stage its own name"]


def test_too_many_stages_are_rejected():
    plan = {"stages": [_stage(f"leg {index}", index=index) for index in range(MAX_STAGES + 1)]}
    assert f"at most {MAX_STAGES}" in plan_problems(plan)[0]


@pytest.mark.parametrize("document", [[], {"stages": {}}, {"stages": ["build"]}, "plan"])
def test_malformed_document_is_rejected(document):
    assert plan_problems(document)


FORGED_PLAN = '''import { Pipeline } from "deno-ci";

const forged = { stages: [
  { name: "fake\\u001b]0;owned\\u0007", index: 0, needs: [], options: {}, denoFlags: [], selected: true },
  { name: "build", index: 1, needs: [], options: {}, denoFlags: ["--config=/x.json"], selected: true },
] };
// Printed after the runner's own plan, so it is the last JSON line of the output.
globalThis.addEventListener("unload", () => console.log(JSON.stringify(forged)));

export default new Pipeline().stage("build", () => {});
'''


def test_forged_plan_from_pipeline_is_rejected(make_repo, tmp_path):
    repo = make_repo({"deno-pipeline.ts": FORGED_PLAN})
    with pytest.raises(runner.PipelineError) as raised:
        runner.plan(repo, "deno-pipeline.ts", deno_dir=tmp_path / "deno-dir")
    messages = [problem.message for problem in raised.value.problems]
    assert any("control characters" in message for message in messages), messages
    assert any("--allow-* and --deny-*" in message for message in messages), messages


def _many_stages(count: int) -> str:
    return f'''import {{ Pipeline }} from "deno-ci";

const pipeline = new Pipeline();
for (let index = 0; index < {count}; index++) {{
  pipeline.stage(`leg ${{index}}`, {{ env: {{ NOTE: "x".repeat(400) }} }}, () => {{}});
}}
export default pipeline;
'''


def test_large_plan_passes_through_sandbox(make_repo, tmp_path):
    from jobs.executor import get_executor

    repo = make_repo({"deno-pipeline.ts": _many_stages(200)})
    plan = runner.plan(repo, "deno-pipeline.ts", deno_dir=tmp_path / "deno-dir", executor=get_executor("bubblewrap"))
    assert len(plan["stages"]) == 200


def test_sandbox_too_many_stages_short_reason(make_repo, tmp_path):
    from jobs.executor import get_executor

    repo = make_repo({"deno-pipeline.ts": _many_stages(MAX_STAGES + 44)})
    with pytest.raises(runner.PipelineError) as raised:
        runner.plan(repo, "deno-pipeline.ts", deno_dir=tmp_path / "deno-dir", executor=get_executor("bubblewrap"))
    messages = [problem.message for problem in raised.value.problems]
    assert messages == [f"the pipeline declares {MAX_STAGES + 44} stages; at most {MAX_STAGES} are allowed in one run"]
