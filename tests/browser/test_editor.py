"""The pipeline editor in a real browser: server markers, completions after `pipeline.`, a save conflict."""

import pytest

from app.extensions import db
from app.forges.crypto import encrypt
from app.models import ForgeAccount
from app.projects import add_project
from tests.browser.conftest import save_screenshot
from tests.conftest import git
from tests.forges.conftest import fake_forge  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
pipeline.stage("build", () => console.log("build"));
pipeline.stage("test", () => console.log("test"));
export default pipeline;
'''

WITH_TYPE_ERROR = PIPELINE.replace('pipeline.stage("test", ', 'pipeline.stage("test", { retries: "twice" }, ')


def test_editor_marks_type_error_and_completes_stage(db_app, make_repo, open_page, live_server):
    add_project("edited", str(make_repo({"deno-pipeline.ts": PIPELINE})))
    page = open_page(width=1360, height=820)
    page.goto(f"{live_server}/projects/edited/editor")
    page.wait_for_selector("#validation-state:has-text('valid')", timeout=90_000)
    assert page.locator("#editor-preview .stage-graph g.node").count() == 2

    page.evaluate("text => window.pipelineEditor.getModel().setValue(text)", WITH_TYPE_ERROR)
    page.wait_for_selector("#validation-state:has-text('problem')", timeout=90_000)
    markers = page.evaluate("monaco.editor.getModelMarkers({ owner: 'deno-ci' })"
                            ".map(m => ({ line: m.startLineNumber, message: m.message }))")
    page.wait_for_selector(".monaco-editor .squiggly-error")
    assert {marker["line"] for marker in markers} == {5}
    assert any("TS2322" in marker["message"] for marker in markers)

    page.evaluate("""() => {
        const editor = window.pipelineEditor;
        const model = editor.getModel();
        const line = model.getLineCount();
        model.pushEditOperations([], [{ range: new monaco.Range(line, 1, line, 1), text: "pipeline." }], () => null);
        editor.setPosition({ lineNumber: line, column: 10 });
        editor.focus();
        editor.trigger("test", "editor.action.triggerSuggest", {});
    }""")
    suggestion = page.locator(".suggest-widget .monaco-list-row", has_text="stage")
    suggestion.first.wait_for(timeout=30_000)
    labels = page.locator(".suggest-widget .monaco-list-row .label-name").all_inner_texts()
    save_screenshot(page, "editor_completion", full_page=False)

    assert "stage" in labels
    assert "parallel" in labels
    assert page.errors == []


def test_editor_save_conflict_offers_reload(db_app, admin, make_repo, open_page, live_server, fake_forge):
    repo = make_repo({"deno-pipeline.ts": PIPELINE})
    project = add_project("forged", str(repo))
    project.forge, project.forge_repo = "github", "acme/forged"
    db.session.commit()
    # The administrator signed in with GitHub, so the save uses that account's token.
    db.session.add(ForgeAccount(user_id=admin.id, forge="github", forge_user_id="1", login="admin-gh",
                                access_token_encrypted=encrypt("admin-token")))
    db.session.commit()
    head = git(repo, "rev-parse", "HEAD")
    contents = "/api/repos/acme/forged/contents/deno-pipeline.ts"
    fake_forge.answer("GET", f"{contents}?ref={head}", {"type": "file", "sha": "blob-1"})
    fake_forge.answer("PUT", contents, {"message": "deno-pipeline.ts does not match blob-1"}, status=409)

    page = open_page(width=1360, height=820)
    page.goto(f"{live_server}/projects/forged/editor")
    page.wait_for_selector("#validation-state:has-text('valid')", timeout=90_000)
    page.click("#save-pipeline")
    page.wait_for_selector("#reload-editor", timeout=30_000)
    save_screenshot(page, "editor_save_conflict", full_page=False)

    assert "someone changed it on GitHub after you opened it" in page.locator("#editor-message").inner_text()
    assert fake_forge.requests[-1]["headers"]["Authorization"] == "Bearer admin-token"
    assert page.errors == []

