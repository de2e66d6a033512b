"""Every main page at phone width (390x844) and laptop width (1280x800): no sideways scrolling of the document.

Wide content (tables, the stage graph, log lines) must scroll inside its own box instead.
The screenshots land in tests/screenshots/ as `width-<page>-<width>.png`.
"""

import pytest

from app.extensions import db
from app.forges.crypto import encrypt
from app.models import Run, Stage, WebhookDelivery
from app.models._columns import utcnow
from app.projects import add_project
from app.runs.logs import PendingLine, store_lines
from tests.browser.conftest import save_screenshot

pytestmark = pytest.mark.browser

PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
pipeline.stage("build", () => console.log("build"));
pipeline.parallel("checks", (group) => {
  group.stage("lint", () => console.log("lint"));
  group.stage("unit-tests-with-a-long-name", () => console.log("unit"));
});
pipeline.stage("publish", { needs: ["checks"] }, () => console.log("publish"));
export default pipeline;
'''
SIZES = [(390, 844), (1280, 800)]
LONG_WORD = "feature/" + "very-long-branch-name-" * 4


def add_run(project, number: int, status: str) -> Run:
    run = Run(project_id=project.id, number=number, trigger="webhook", event="push", branch=LONG_WORD,
              commit_sha=f"{number:040x}", status=status, message="Refactor the parser so that it reads "
              "every kind of input the old one read, and a few more " * 2, author="Ada Lovelace <ada@example.com>",
              queued_at=utcnow(), started_at=utcnow(), finished_at=utcnow() if status != "running" else None)
    db.session.add(run)
    db.session.flush()
    return run


@pytest.fixture
def pages(db_app, make_repo) -> dict[str, str]:
    """Create a forge project with runs, a stage with long log lines and webhook deliveries; return page paths."""
    project = add_project("phone-width", str(make_repo({"deno-pipeline.ts": PIPELINE})))
    project.forge, project.forge_repo = "github", "acme/phone-width"
    project.webhook_secret_encrypted = encrypt("secret")
    runs = [add_run(project, number, status) for number, status in ((1, "success"), (2, "failed"), (3, "running"))]
    stage = Stage(run_id=runs[-1].id, name="unit-tests-with-a-long-name", position=0, status="running",
                  started_at=utcnow())
    db.session.add(stage)
    delivery = None
    for number in range(3):
        delivery = WebhookDelivery(
            project_id=project.id, forge="github", forge_delivery_id=f"{number:08x}-5e1d-4c1c-8000-00000000000{number}",
            event="push", headers={"x-github-event": "push", "user-agent": "GitHub-Hookshot/" + "a" * 60},
            body=b'{"ref": "refs/heads/' + LONG_WORD.encode() + b'", "after": "' + b"2" * 40 + b'"}',
            status_code=202, reason=f"Run queued: push to {LONG_WORD} by Ada Lovelace", run_id=runs[number].id)
        db.session.add(delivery)
    db.session.commit()
    store_lines(db.engine, runs[-1].id, stage.id, [PendingLine("stdout", "x" * 400, utcnow()),
                                                   PendingLine("stdout", "ok " * 50, utcnow())])
    return {
        "dashboard": "/", "run": f"/runs/{runs[-1].id}", "history": "/projects/phone-width",
        "editor": "/projects/phone-width/editor", "deliveries": "/projects/phone-width/webhook-deliveries",
        "delivery": f"/projects/phone-width/webhook-deliveries/{delivery.id}",
        "account": "/account", "users": "/admin/users", "tokens": "/admin/tokens", "audit": "/admin/audit",
        "members": "/projects/phone-width/members", "secrets": "/projects/phone-width/secrets",
    }


def _settle(page, name: str) -> None:
    if name == "editor":
        page.wait_for_selector(".monaco-editor", timeout=90_000)
        page.wait_for_selector("#validation-state:not(:has-text('checking'))", timeout=90_000)
    elif name == "run":
        page.wait_for_selector(".log-line", timeout=30_000)
    page.wait_for_timeout(300)


@pytest.mark.parametrize("width, height", SIZES, ids=[f"{width}x{height}" for width, height in SIZES])
def test_no_page_scrolls_sideways(pages, open_page, live_server, width, height):
    page = open_page(width=width, height=height)
    overflowing = {}
    for name, path in pages.items():
        page.goto(f"{live_server}{path}")
        _settle(page, name)
        save_screenshot(page, f"width-{name}-{width}")
        widths = page.evaluate("({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth })")
        if widths["scroll"] > widths["inner"]:
            overflowing[name] = widths

    assert overflowing == {}
    assert page.errors == []
