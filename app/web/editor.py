"""The pipeline editor: Monaco with the SDK's types, validation as one types, runs of unsaved text, saving.

The endpoints under /projects/<name>/editor/ take and return JSON, because Monaco's
markers are set from script; the stage graph preview comes back as HTML inside it.
"""

import logging
import re
import subprocess
import threading
from functools import cache

from flask import jsonify, render_template, request, url_for
from flask_login import current_user

from app.pipelines import editor
from app.pipelines.runner import DENO, SDK_DIR
from app.runs.service import RunError
from app.web import web
from app.auth.audit import audit
from app.auth.permissions import Action, project_by_name, requires, signed_in
from app.queue import redis_connection
from app.web.access import allowed
from app.web.graph_layout import plan_graph

log = logging.getLogger(__name__)

# The path the SDK's files get inside Monaco's TypeScript worker; the page maps "deno-ci" there.
SDK_TYPES_ROOT = "file:///deno-ci/sdk"
# A commit id as git prints it: SHA-1 or SHA-256, abbreviated to at least 7 digits.
COMMIT_ID = re.compile(r"[0-9a-f]{7,64}")


def _edit_request() -> tuple[str, str]:
    body = request.get_json(silent=True) or {}
    text, branch = body.get("text"), body.get("branch")
    if not isinstance(text, str) or not isinstance(branch, str) or not branch.strip():
        raise editor.EditorError("Send JSON with 'text' (the pipeline file) and 'branch' (a branch name).")
    return text, branch.strip()


def _base_commit() -> str | None:
    base = (request.get_json(silent=True) or {}).get("base")
    if base is None:
        return None
    if not isinstance(base, str) or not COMMIT_ID.fullmatch(base):
        raise editor.EditorError(f"'base' is invalid: expected the commit id the text was edited from, got {str(base)[:80]!r}.")
    return base


def _problem(error: Exception, status: int | None = None):
    return jsonify({"error": type(error).__name__, "detail": str(error)}), status or getattr(error, "status", 422)


@web.get("/projects/<name>/editor")
@requires(Action.VIEW_PROJECT, project_by_name)
def pipeline_editor(name: str):
    """Show the pipeline file of a branch in the editor."""
    project = project_by_name(name)
    branch = request.args.get("branch", "").strip() or project.default_branch
    problem = None
    try:
        text, commit = editor.read_pipeline(project, branch)
    except editor.EditorError as error:
        text, commit, problem = "", None, str(error)
    return render_template("editor/show.html", project=project, branch=branch, text=text, commit=commit,
                           branches=editor.list_branches(project), can_edit=allowed(Action.EDIT_PIPELINE, project),
                           problem=problem, sdk_root=SDK_TYPES_ROOT)


# Checks each web process runs at once: each runs two sandboxed Deno processes for up to a minute.
MAX_CONCURRENT_VALIDATIONS = 4
_validation_slots = threading.BoundedSemaphore(MAX_CONCURRENT_VALIDATIONS)
# A user's running check is marked by this Redis key, which expires by itself if the process dies.
VALIDATION_KEY_SECONDS = 90


@web.post("/projects/<name>/editor/validate")
@requires(Action.EDIT_PIPELINE, project_by_name)
def pipeline_validate(name: str):
    """Plan and type-check edited text at the branch head; return problems and the stage graph preview.

    One check per user runs at a time (429 otherwise), and at most MAX_CONCURRENT_VALIDATIONS
    per web process (503), so that editors cannot take the web server's threads.
    """
    project = project_by_name(name)
    user_key = f"deno-ci:editor-validation:{current_user.id}"
    try:
        text, branch = _edit_request()
    except editor.EditorError as error:
        return _problem(error)
    if not redis_connection().set(user_key, "1", nx=True, ex=VALIDATION_KEY_SECONDS):
        log.info("project %s: check of user %s rejected, an earlier one still runs", project.id, current_user.id)
        return jsonify({"error": "Too Many Requests", "detail": "An earlier check of yours is still running. "
                        "The editor checks the text again when you next change it."}), 429, {"Retry-After": "2"}
    try:
        if not _validation_slots.acquire(blocking=False):
            log.warning("project %s: check of user %s rejected, %d checks already run in this process",
                        project.id, current_user.id, MAX_CONCURRENT_VALIDATIONS)
            return jsonify({"error": "Service Unavailable", "detail": "The server is checking too many pipelines at once. "
                            "Change the text again in a few seconds."}), 503, {"Retry-After": "5"}
        try:
            result = editor.validate(project, branch, text)
        finally:
            _validation_slots.release()
    except editor.EditorError as error:
        return _problem(error)
    finally:
        redis_connection().delete(user_key)
    preview = render_template("editor/_preview.html", graph=plan_graph(result.stages), problems=result.problems,
                              stages=result.stages)
    return jsonify({"commit": result.commit, "problems": result.problems, "stages": result.stages,
                    "preview": preview})


@web.post("/projects/<name>/editor/run")
@requires(Action.EDIT_PIPELINE, project_by_name)
def pipeline_run_edited(name: str):
    """Start a run of the edited text on a branch without committing it."""
    project = project_by_name(name)
    try:
        text, branch = _edit_request()
        run = editor.start_edited_run(project, branch, text)
    except (editor.EditorError, RunError) as error:
        return _problem(error)
    log.info("run %s: started from the editor by user %s", run.id, current_user.id)
    return jsonify({"id": run.id, "number": run.number, "url": url_for("web.run_page", run_id=run.id)}), 201


@web.post("/projects/<name>/editor/save")
@requires(Action.EDIT_PIPELINE, project_by_name)
def pipeline_save(name: str):
    """Commit the edited text as the pipeline file on the branch, through the forge for forge projects.

    JSON body: text, branch, message, and base (the commit the text was edited from), with
    which the forge rejects the commit (409) when the file changed on the branch meanwhile.
    """
    project = project_by_name(name)
    message = str((request.get_json(silent=True) or {}).get("message") or "").strip()
    try:
        text, branch = _edit_request()
        commit = editor.save_pipeline(project, branch, text, current_user, message, _base_commit())
    except editor.EditorError as error:
        audit("pipeline_save", target=f"project {project.name}", outcome="failure", detail=str(error)[:500])
        return _problem(error)
    audit("pipeline_save", target=f"project {project.name}", detail=f"commit {commit} on branch {branch}")
    return jsonify({"commit": commit, "branch": branch})


@web.get("/editor/sdk-types.json")
@signed_in
def sdk_types():
    """Return the SDK's TypeScript files and Deno's own declarations, for Monaco's TypeScript worker."""
    return jsonify({"libs": _sdk_type_libs()}), 200, {"Cache-Control": "private, max-age=3600"}


@cache
def _sdk_type_libs() -> list[dict]:
    libs = [{"path": f"{SDK_TYPES_ROOT}/{path.relative_to(SDK_DIR).as_posix()}", "content": path.read_text()}
            for path in sorted(SDK_DIR.rglob("*.ts"))
            if not path.name.endswith("_test.ts") and "testdata" not in path.parts]
    libs.append({"path": "file:///deno-ci/lib.deno.d.ts", "content": _deno_declarations()})
    return libs


def _deno_declarations() -> str:
    # `deno types` prints the Deno namespace and the web APIs as Deno has them. Its
    # `/// <reference lib=...>` lines name libraries Monaco's TypeScript does not ship.
    try:
        output = subprocess.run([str(DENO), "types"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("cannot read Deno's type declarations for the editor: %s", error)
        return ""
    return "\n".join(line for line in output.splitlines() if not line.startswith("/// <reference"))
