"""The pages' views and fragments with the test client: filters, search, tests tab, raw log, metrics, editor."""

from html import unescape

import pytest

from app.extensions import db
from app.models import Run, Stage
from app.models._columns import utcnow
from app.projects import add_project
from app.runs.logs import PendingLine, store_lines
from app.runs.test_results import record_stage_reports
from tests.conftest import git

HX = {"HX-Request": "true"}
JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="./main_test.ts" tests="2">
  <testcase name="adds" classname="./main_test.ts" time="0.001"/>
  <testcase name="subtracts" classname="./main_test.ts" time="0.002"><failure message="expected 1, got 2">stack</failure></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def project(db_app):
    return add_project("web", "/nonexistent")


def make_run(project, number: int, **fields) -> Run:
    run = Run(project_id=project.id, number=number, trigger="cli", event=fields.pop("event", "push"),
              branch=fields.pop("branch", "main"), status=fields.pop("status", "success"), **fields)
    db.session.add(run)
    db.session.commit()
    return run


def make_stage(run, name="test") -> Stage:
    stage = Stage(run_id=run.id, name=name, position=0, status="success", started_at=utcnow(), finished_at=utcnow())
    db.session.add(stage)
    db.session.commit()
    return stage


def test_dashboard_fragment_has_one_root(client, project):
    make_run(project, 1, status="running", started_at=utcnow())

    page = client.get("/", headers=HX).get_data(as_text=True)

    assert page.startswith('<div id="dashboard-overview"')
    assert "every 2s" in page
    assert ">1</span>" in page


def test_history_filters_by_status_and_author(client, project):
    make_run(project, 1, status="failed", author="Ada <ada@example.com>")
    make_run(project, 2, status="success", author="Ada <ada@example.com>")
    make_run(project, 3, status="failed", author="Bob <bob@example.com>")

    page = client.get("/projects/web?status=failed&author=ada", headers=HX).get_data(as_text=True)

    assert page.startswith('<section id="project-runs">')
    assert ">#1</a>" in page
    assert ">#2</a>" not in page
    assert ">#3</a>" not in page


def test_history_rejects_invalid_date(client, project):
    response = client.get("/projects/web?since=yesterday")

    assert response.status_code == 422
    assert "must be a date" in response.get_data(as_text=True)


@pytest.mark.parametrize("query, message", [
    ("branch=%00", "'branch' contains a NUL character"),
    ("author=ada%00", "'author' contains a NUL character"),
    ("branch=" + "b" * 256, "'branch' is 256 characters long"),
    ("status=%00", "is invalid: expected one of"),
    ("event=%00", "is invalid: expected one of"),
    ("since=%00", "must be a date"),
    ("until=%00", "must be a date"),
])
def test_history_rejects_unstorable_filter(client, project, query, message):
    make_run(project, 1)

    response = client.get(f"/projects/web?{query}")
    fragment = client.get(f"/projects/web?{query}", headers=HX)

    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert message in unescape(response.get_data(as_text=True))
    assert fragment.status_code == 422
    assert message in unescape(fragment.get_data(as_text=True))


def test_history_pages_runs(client, project):
    for number in range(1, 31):
        make_run(project, number)

    second = client.get("/projects/web?page=2", headers=HX).get_data(as_text=True)

    assert "page 2 of 2" in second
    assert ">#5</a>" in second
    assert ">#6</a>" not in second


def test_search_highlights_matches_and_filters_stream(client, project):
    run = make_run(project, 1)
    stage = make_stage(run)
    store_lines(db.engine, run.id, stage.id, [PendingLine("stdout", "Connection <refused> here", utcnow()),
                                              PendingLine("stderr", "connection REFUSED again", utcnow())])

    everything = client.get("/projects/web/search?q=refused", headers=HX).get_data(as_text=True)
    stderr_only = client.get("/projects/web/search?q=refused&stream=stderr", headers=HX).get_data(as_text=True)

    assert "&lt;<mark>refused</mark>&gt;" in everything
    assert "<mark>REFUSED</mark>" in everything
    assert "<mark>refused</mark>" not in stderr_only
    assert "<mark>REFUSED</mark>" in stderr_only


def test_search_shows_link_text_without_escapes(client, project):
    run = make_run(project, 1)
    stage = make_stage(run)
    line = "see \x1b]8;;https://example.com\x07the docs\x1b]8;;\x07 in \x1b[32mgreen\x1b[0m\x08"
    store_lines(db.engine, run.id, stage.id, [PendingLine("stdout", line, utcnow())])

    page = client.get("/projects/web/search?q=docs", headers=HX).get_data(as_text=True)

    assert "see the <mark>docs</mark> in green" in page
    assert "]8;;" not in page
    assert "\x1b" not in page
    assert "\x08" not in page


def test_search_shows_excerpt_of_long_line(client, project):
    run = make_run(project, 1)
    stage = make_stage(run)
    line = "a" * 30_000 + " needle " + "a" * 30_000
    # Lowercase U+0130 is two characters, which must not move the excerpt off its match.
    dotted = "\u0130" * 300 + "x" * 500 + "MATCHME" + "z" * 500
    coloured = "y" * 800 + "\x1b[1mBOLDNEEDLE\x1b[0m" + "y" * 200
    store_lines(db.engine, run.id, stage.id, [PendingLine("stdout", text, utcnow()) for text in (line, dotted, coloured)])

    needle = client.get("/projects/web/search?q=needle", headers=HX).get_data(as_text=True)
    repeated = client.get("/projects/web/search?q=aaaa", headers=HX).get_data(as_text=True)
    dotted_page = client.get("/projects/web/search?q=matchme", headers=HX).get_data(as_text=True)

    across_colour = client.get("/projects/web/search?q=mBOLDNEEDLE", headers=HX).get_data(as_text=True)

    assert "<mark>MATCHME</mark>" in dotted_page
    # The stored line matches across a colour code that the page does not show: the excerpt is where it was.
    assert "BOLDNEEDLE" in across_colour
    assert "<mark>needle</mark>" in needle
    assert "…" + "a" * 190 in needle
    assert len(needle) < 10_000
    assert len(repeated) < 20_000


def test_search_rejects_short_term(client, project):
    page = client.get("/projects/web/search?q=ab", headers=HX).get_data(as_text=True)

    assert "at least 3 characters" in page


@pytest.mark.parametrize("query, message", [
    ("q=ab%00", "'q' contains a NUL character"),
    ("q=abc&stage=%00", "'stage' contains a NUL character"),
])
def test_search_rejects_nul(client, project, query, message):
    page = client.get(f"/projects/web/search?{query}", headers=HX).get_data(as_text=True)

    assert message in unescape(page)


def test_tests_tab_lists_failures_first(client, project, tmp_path):
    run = make_run(project, 1, status="failed")
    stage = make_stage(run)
    reports = tmp_path / ".deno-ci" / "reports"
    reports.mkdir(parents=True)
    (reports / "junit.xml").write_text(JUNIT)
    (reports / "coverage.lcov").write_text("SF:main.ts\nLF:10\nLH:8\nend_of_record\n")
    record_stage_reports(run.id, stage.id, tmp_path)

    tests = client.get(f"/runs/{run.id}/tests").get_data(as_text=True)
    summary = client.get(f"/runs/{run.id}/summary").get_data(as_text=True)

    assert tests.index("subtracts") < tests.index("adds")
    assert "expected 1, got 2" in tests
    assert "80.0 %" in summary


def test_report_outside_workspace_is_skipped(db_app, project, tmp_path):
    run = make_run(project, 1)
    stage = make_stage(run)
    outside = tmp_path / "secret.xml"
    outside.write_text(JUNIT)
    workspace = tmp_path / "workspace"
    (workspace / ".deno-ci" / "reports").mkdir(parents=True)
    (workspace / ".deno-ci" / "reports" / "junit.xml").symlink_to(outside)

    assert record_stage_reports(run.id, stage.id, workspace) is None


def test_raw_log_downloads_text(client, project):
    run = make_run(project, 1)
    stage = make_stage(run)
    store_lines(db.engine, run.id, stage.id, [PendingLine("stdout", f"line {index}", utcnow()) for index in range(3)])

    response = client.get(f"/runs/{run.id}/log.txt")

    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "line 0\nline 1\nline 2\n"


def test_metrics_json_has_stage_figures_and_trend(client, project):
    run = make_run(project, 1, queued_at=utcnow(), started_at=utcnow(), finished_at=utcnow())
    make_stage(run, "build")

    metrics = client.get("/api/v1/projects/web/metrics?days=7").get_json()

    assert metrics["runs"] == 1
    assert metrics["success_rate"] == 1.0
    assert [stage["name"] for stage in metrics["stages"]] == ["build"]
    assert len(metrics["trend"]) == 8
    assert metrics["flaky_tests"] == []


def test_flaky_test_is_listed(client, project, tmp_path):
    for number, xml in ((1, JUNIT), (2, JUNIT.replace('<failure message="expected 1, got 2">stack</failure>', ""))):
        run = make_run(project, number, commit_sha="abc123", queued_at=utcnow())
        stage = make_stage(run)
        folder = tmp_path / str(number) / ".deno-ci" / "reports"
        folder.mkdir(parents=True)
        (folder / "junit.xml").write_text(xml)
        record_stage_reports(run.id, stage.id, tmp_path / str(number))

    flaky = client.get("/api/v1/projects/web/metrics").get_json()["flaky_tests"]

    assert [(test["name"], test["failed_run"], test["passed_run"]) for test in flaky] == [("subtracts", 1, 2)]


PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("build", () => console.log("build"));
'''


def test_editor_validation_reports_line(client, make_repo):
    add_project("edited", str(make_repo({"deno-pipeline.ts": PIPELINE})))
    broken = PIPELINE.replace('"build", ', '"build", { timeout: true }, ')

    good = client.post("/projects/edited/editor/validate", json={"text": PIPELINE, "branch": "main"}).get_json()
    bad = client.post("/projects/edited/editor/validate", json={"text": broken, "branch": "main"}).get_json()

    assert good["problems"] == []
    assert [stage["name"] for stage in good["stages"]] == ["build"]
    assert {problem["line"] for problem in bad["problems"]} == {3}


def test_editor_validation_runs_in_sandbox(client, make_repo, tmp_path):
    host_file = tmp_path / "host-only.json"
    host_file.write_text('{"secret": "kept-on-the-host"}')
    add_project("edited", str(make_repo({"deno-pipeline.ts": PIPELINE})))
    reading = ('import { Pipeline } from "deno-ci";\n'
               f'import data from "{host_file}" with {{ type: "json" }};\n'
               'export default new Pipeline().stage(data.secret, () => {});\n')

    response = client.post("/projects/edited/editor/validate", json={"text": reading, "branch": "main"})

    assert response.status_code == 200
    assert response.get_json()["problems"]
    assert "kept-on-the-host" not in response.get_data(as_text=True)


def test_editor_validation_one_at_a_time_per_user(client, make_repo, admin):
    from app.queue import redis_connection

    add_project("edited", str(make_repo({"deno-pipeline.ts": PIPELINE})))
    redis_connection().set(f"deno-ci:editor-validation:{admin.id}", "1", ex=30)
    try:
        busy = client.post("/projects/edited/editor/validate", json={"text": PIPELINE, "branch": "main"})
    finally:
        redis_connection().delete(f"deno-ci:editor-validation:{admin.id}")
    assert busy.status_code == 429
    assert "still running" in busy.get_json()["detail"]
    assert client.post("/projects/edited/editor/validate", json={"text": PIPELINE, "branch": "main"}).status_code == 200


def test_editor_run_stores_override(client, make_repo):
    add_project("edited", str(make_repo({"deno-pipeline.ts": PIPELINE})))
    edited = PIPELINE.replace("build", "assemble")

    response = client.post("/projects/edited/editor/run", json={"text": edited, "branch": "main"})

    assert response.status_code == 201
    assert db.session.get(Run, response.get_json()["id"]).pipeline_override == edited


def test_editor_save_commits_to_checked_out_branch(client, make_repo):
    repo = make_repo({"deno-pipeline.ts": PIPELINE})
    add_project("edited", str(repo))
    edited = PIPELINE.replace("build", "assemble")

    response = client.post("/projects/edited/editor/save",
                           json={"text": edited, "branch": "main", "message": "Rename the stage"})

    assert response.status_code == 200
    assert git(repo, "log", "-1", "--format=%s") == "Rename the stage"
    assert (repo / "deno-pipeline.ts").read_text() == edited
    assert git(repo, "status", "--porcelain") == ""
