"""A tree whose type check passed is not checked again; how a pipeline that never loads is reported."""

import pytest

from app.pipelines import runner

GOOD = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("build", () => {});
'''

TYPE_ERROR = '''import { Pipeline } from "deno-ci";

const count: number = "three";
export default new Pipeline().stage("build", () => console.log(count));
'''


def test_passed_check_is_not_repeated_for_same_tree(make_repo, tmp_path):
    repo = make_repo({"deno-pipeline.ts": GOOD})
    deno_dir = tmp_path / "deno-dir"
    runner.plan_and_check(repo, "deno-pipeline.ts", None, deno_dir, source_key="tree-1")
    markers = list((tmp_path / "deno-dir.checked").iterdir())
    assert [marker.name.split("-")[:2] for marker in markers] == [["tree", "1"]]

    # Under the same key the files cannot differ on the platform; changing them here shows the check is skipped.
    (repo / "deno-pipeline.ts").write_text(TYPE_ERROR)
    plan = runner.plan_and_check(repo, "deno-pipeline.ts", None, deno_dir, source_key="tree-1")
    assert [stage["name"] for stage in plan["stages"]] == ["build"]
    with pytest.raises(runner.PipelineError):
        runner.plan_and_check(repo, "deno-pipeline.ts", None, deno_dir, source_key="tree-2")


def test_other_pipeline_file_of_tree_is_checked(make_repo, tmp_path):
    repo = make_repo({"deno-pipeline.ts": GOOD, "other-pipeline.ts": TYPE_ERROR})
    deno_dir = tmp_path / "deno-dir"
    runner.plan_and_check(repo, "deno-pipeline.ts", None, deno_dir, source_key="tree-4")

    with pytest.raises(runner.PipelineError) as raised:
        runner.plan_and_check(repo, "other-pipeline.ts", None, deno_dir, source_key="tree-4")
    assert any("not assignable" in problem.message for problem in raised.value.problems)


def test_failed_check_leaves_no_marker(make_repo, tmp_path):
    repo = make_repo({"deno-pipeline.ts": TYPE_ERROR})
    deno_dir = tmp_path / "deno-dir"
    for _ in range(2):
        with pytest.raises(runner.PipelineError) as raised:
            runner.plan_and_check(repo, "deno-pipeline.ts", None, deno_dir, source_key="tree-3")
        assert any("not assignable" in problem.message for problem in raised.value.problems)
    assert not (tmp_path / "deno-dir.checked").exists()


UNSETTLED = '''import { Pipeline } from "deno-ci";

await new Promise(() => {});
export default new Pipeline();
'''


def test_unsettled_top_level_await_is_explained(make_repo, tmp_path):
    repo = make_repo({"deno-pipeline.ts": UNSETTLED})
    with pytest.raises(runner.PipelineError) as raised:
        runner.plan(repo, "deno-pipeline.ts", None, tmp_path / "deno-dir")
    (problem,) = raised.value.problems
    assert problem.file == "deno-pipeline.ts"
    assert "never settles" in problem.message
    assert "runner.ts" not in problem.message
