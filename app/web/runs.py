"""A run's page: summary with stage graph, timeline, live log, test results; the raw log and artifacts."""

from flask import Response, abort, render_template, request, send_file, stream_with_context
from sqlalchemy import select

from app.auth.permissions import Action, load_run, project_by_run, requires

from app.extensions import db
from app.models import Artifact, Run, Stage
from app.runs.logs import read_lines
from app.runs.test_results import run_coverage, run_reports
from app.status import TERMINAL_RUN
from app.web import web
from app.web.access import allowed
from app.web.graph_layout import run_graph

RAW_LOG_PAGE = 5000


def _summary_context(run: Run) -> dict:
    reports = run_reports(run.id)
    return {
        "run": run, "project": run.project, "graph": run_graph(run), "can_cancel": allowed(Action.CANCEL_RUN, run.project),
        "can_rerun": allowed(Action.RERUN, run.project),
        "can_approve": run.approval_required and run.approved_at is None and allowed(Action.MANAGE_PROJECT, run.project),
        "active": run.status not in TERMINAL_RUN, "reports": reports, "coverage": run_coverage(reports),
        "failed_tests": sum(report.failures + report.errors for report in reports),
    }


@web.get("/runs/<int:run_id>")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_page(run_id: int):
    """Show a run: summary and stage graph, timeline, live log and test results."""
    run = load_run(run_id)
    return render_template("runs/show.html", **_summary_context(run))


@web.get("/runs/<int:run_id>/summary")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_summary(run_id: int):
    """Render the run's summary (status, actions, stage graph) alone, for polling while it is going on."""
    run = load_run(run_id)
    return render_template("runs/_summary.html", **_summary_context(run))


@web.get("/runs/<int:run_id>/tests")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_tests(run_id: int):
    """Render the run's test results alone, failures first."""
    run = load_run(run_id)
    return render_template("runs/_tests.html", **_summary_context(run))


@web.get("/runs/<int:run_id>/log.txt")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_log_text(run_id: int):
    """Download the run's log as plain text, or one stage's with `?stage=<id>`; ANSI escapes are kept."""
    run = load_run(run_id)
    stage_id = request.args.get("stage", type=int)
    if stage_id is not None and db.session.scalar(select(Stage.id).where(Stage.id == stage_id,
                                                                         Stage.run_id == run.id)) is None:
        abort(404, f"Run {run_id} has no stage {stage_id}.")
    engine = db.engine

    def lines():
        after = 0
        while True:
            page = read_lines(engine, run_id, after, RAW_LOG_PAGE, stage_id=stage_id)
            if not page:
                return
            yield "".join(f"{line['text']}\n" for line in page)
            after = page[-1]["seq"]

    name = f"{run.project.name}-{run.number}" + (f"-stage-{stage_id}" if stage_id else "")
    return Response(stream_with_context(lines()), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{name}.log"'})


@web.get("/runs/<int:run_id>/artifacts/<name>")
@requires(Action.VIEW_PROJECT, project_by_run)
def artifact_download(run_id: int, name: str):
    """Download an artifact archive (.tar.gz)."""
    load_run(run_id)
    artifact = db.session.scalar(select(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
    if artifact is None:
        abort(404, f"Run {run_id} has no artifact {name!r}.")
    return send_file(artifact.path, as_attachment=True, download_name=f"{name}.tar.gz", mimetype="application/gzip")
