"""The run page in a real browser: live log lines, the timeline's lanes, a long log, who sees Cancel."""

import time
from datetime import timedelta

import pytest

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import Membership, Role, Run, Stage, User
from app.projects import add_project
from app.runs import service
from app.runs.events import make_event
from app.runs.logs import PendingLine, store_lines
from app.models._columns import utcnow
from tests.browser.conftest import save_screenshot
from tests.conftest import wait_for
from tests.runs.test_faults import TICKING_PIPELINE, texts

pytestmark = pytest.mark.browser

PARALLEL_PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

pipeline.stage("prepare", async () => { console.log("\\x1b[32mready\\x1b[0m"); await sleep(300); });
pipeline.parallel("checks", (group) => {
  group.stage("lint", async () => { await sleep(600); console.log("lint ok"); });
  group.stage("unit", async () => { await sleep(900); console.log("unit ok"); });
});
pipeline.stage("publish", () => { console.log("published"); });

export default pipeline;
'''


def start_run(make_repo, name: str, pipeline: str) -> int:
    repo = make_repo({"deno-pipeline.ts": pipeline})
    return service.create_run(add_project(name, str(repo)), trigger="cli", event=make_event("push", branch="main")).id


def test_log_lines_arrive_live(workers, make_repo, open_page, live_server):
    run_id = start_run(make_repo, "live", TICKING_PIPELINE % {"count": 60, "interval": 100})
    wait_for(lambda: "tick 3" in texts(run_id), timeout=120)
    page = open_page()
    page.goto(f"{live_server}/runs/{run_id}")

    page.wait_for_selector(".log-line:has-text('tick 3')", timeout=30_000)
    shown_first = page.locator(".log-line").count()
    page.wait_for_selector(".log-line:has-text('tick 30')", timeout=60_000)
    save_screenshot(page, "run_live_log", full_page=False)

    assert page.locator(".log-line").count() > shown_first
    assert page.locator("#log-state").inner_text() in ("live", "run success")
    # The run must end before the next test empties the tables under its workers.
    page.wait_for_selector("#log-state:has-text('run success')", timeout=60_000)
    assert page.locator("#run-summary .status").first.inner_text() in ("running", "success")
    assert page.errors == []


def test_timeline_puts_parallel_stages_on_separate_lanes(workers, make_repo, open_page, live_server):
    run_id = start_run(make_repo, "lanes", PARALLEL_PIPELINE)
    wait_for(lambda: db.session.get(Run, run_id, populate_existing=True).status == "success", timeout=180)
    page = open_page()
    page.goto(f"{live_server}/runs/{run_id}")
    page.wait_for_selector("#log-state:has-text('run success')", timeout=30_000)

    bars = page.locator("#gantt rect.bar-run")
    lanes = {bars.nth(index).get_attribute("data-stage"): bars.nth(index).get_attribute("data-lane")
             for index in range(bars.count())}
    save_screenshot(page, "run_timeline")

    assert sorted(lanes) == ["lint", "prepare", "publish", "unit"]
    assert lanes["lint"] != lanes["unit"]
    assert lanes["prepare"] == lanes["publish"] == "0"
    assert page.locator("#gantt rect.bar-queued").count() >= 1
    assert page.locator(".stage-graph g.node").count() == 4
    assert page.errors == []


def test_twenty_thousand_lines_stay_responsive(db_app, open_page, live_server):
    project = add_project("long", "/nonexistent")
    run = Run(project_id=project.id, number=1, trigger="cli", event="push", branch="main", status="success",
                      started_at=utcnow(), finished_at=utcnow())
    db.session.add(run)
    db.session.flush()
    stage = Stage(run_id=run.id, name="flood", position=0, status="success", started_at=run.started_at,
                  finished_at=run.finished_at)
    db.session.add(stage)
    db.session.commit()
    for start in range(0, 20_000, 5_000):
        store_lines(db.engine, run.id, stage.id, [PendingLine("stdout", f"\x1b[36mline\x1b[0m {index}", utcnow())
                                                  for index in range(start + 1, start + 5_001)])
    page = open_page()
    # Record the longest gap between animation frames while the log renders: a long gap is a frozen page.
    page.add_init_script("""
        window.frameGaps = [];
        let last = performance.now();
        const tick = (now) => { window.frameGaps.push(now - last); last = now; requestAnimationFrame(tick); };
        requestAnimationFrame(tick);
    """)
    started = time.monotonic()
    page.goto(f"{live_server}/runs/{run.id}#L19990")
    page.wait_for_function("document.querySelectorAll('.log-line').length === 20000", timeout=60_000)
    rendered_after = time.monotonic() - started
    longest_gap = page.evaluate("Math.max(...window.frameGaps)")
    save_screenshot(page, "run_long_log", full_page=False)
    print(f"20,000 lines rendered {rendered_after:.2f} s after navigation; longest frame gap {longest_gap:.0f} ms")

    assert page.locator("#L19990.highlighted").count() == 1
    assert page.locator("#L19990").is_visible()
    # A generous bound for a shared 2-core machine; rendering it all in one task takes seconds.
    assert longest_gap < 1500
    assert page.errors == []


def test_viewer_sees_no_cancel_button(db_app, open_page, live_server):
    project = add_project("guarded", "/nonexistent")
    run_id = Run(project_id=project.id, number=1, trigger="cli", event="push", branch="main", status="queued")
    db.session.add(run_id)
    viewer = User(username="viewer", password_hash=hash_password("viewer-password"))
    db.session.add(viewer)
    db.session.flush()
    db.session.add(Membership(user_id=viewer.id, project_id=project.id, role=Role.VIEWER))
    db.session.commit()

    admin_page = open_page()
    admin_page.goto(f"{live_server}/runs/{run_id.id}")
    viewer_page = open_page("viewer", "viewer-password")
    viewer_page.goto(f"{live_server}/runs/{run_id.id}")
    viewer_page.wait_for_selector("#run-summary")
    save_screenshot(viewer_page, "run_as_viewer", full_page=False)

    assert admin_page.locator("[data-run-action=cancel]").count() == 1
    assert viewer_page.locator("[data-run-action=cancel]").count() == 0
    assert viewer_page.locator("[data-run-action=rerun]").count() == 0


def test_removed_viewer_stops_reconnecting(db_app, open_page, live_server):
    project = add_project("revoked", "/nonexistent")
    run = Run(project_id=project.id, number=1, trigger="cli", event="push", branch="main", status="running",
              started_at=utcnow())
    viewer = User(username="viewer", password_hash=hash_password("viewer-password"))
    db.session.add_all([run, viewer])
    db.session.flush()
    db.session.add(Stage(run_id=run.id, name="build", position=0, status="running", started_at=utcnow()))
    membership = Membership(user_id=viewer.id, project_id=project.id, role=Role.VIEWER)
    db.session.add(membership)
    db.session.commit()

    page = open_page("viewer", "viewer-password")
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{live_server}/runs/{run.id}")
    page.wait_for_selector("#log-state.live")
    db.session.delete(membership)
    db.session.commit()

    page.wait_for_function("document.getElementById('log-state').textContent === 'You may no longer view this project.'")
    opened = len(sockets)
    time.sleep(3)
    save_screenshot(page, "run_access_removed", full_page=False)
    assert len(sockets) == opened == 1
    assert page.locator("#run-summary[hx-trigger]").count() == 0
    assert page.errors == []


def make_finished_run(project_name: str, stage_names: list[str]) -> tuple[Run, list[Stage]]:
    project = add_project(project_name, "/nonexistent")
    run = Run(project_id=project.id, number=1, trigger="cli", event="push", branch="main", status="success",
              started_at=utcnow(), finished_at=utcnow())
    db.session.add(run)
    db.session.flush()
    stages = [Stage(run_id=run.id, name=name, position=position, status="success", started_at=run.started_at,
                    finished_at=run.finished_at) for position, name in enumerate(stage_names)]
    db.session.add_all(stages)
    db.session.commit()
    return run, stages


def test_log_shows_hyperlink_text_without_link(db_app, open_page, live_server):
    run, (stage,) = make_finished_run("links", ["links"])
    texts = ["bell \x1b]8;;https://example.com\x07CLICK-ME\x1b]8;;\x07 end",
             "script \x1b]8;;javascript:alert(1)\x07CLICK-ME\x1b]8;;\x07 end",
             "st \x1b]8;;https://example.com\x1b\\CLICK-ME\x1b]8;;\x1b\\ end",
             "back\x08space \x1b[32mgreen\x1b[0m",
             "unterminated \x1b]8;;https://example.com",
             "next line"]
    store_lines(db.engine, run.id, stage.id, [PendingLine("stdout", text, utcnow()) for text in texts])
    page = open_page()

    page.goto(f"{live_server}/runs/{run.id}")
    page.wait_for_function("document.querySelectorAll('.log-line').length === 6", timeout=30_000)
    line_texts = page.locator(".log-line .line-text").all_inner_texts()
    save_screenshot(page, "run_log_hyperlinks", full_page=False)

    assert line_texts[0] == "bell CLICK-ME end"
    assert line_texts[1] == "script CLICK-ME end"
    assert line_texts[2] == "st CLICK-ME end"
    assert line_texts[3] == "backspace green"
    assert line_texts[4] == "unterminated "
    assert line_texts[5] == "next line"
    assert page.locator(".log-line .line-text a").count() == 0
    assert page.locator(".log-line .line-text .ansi-green-fg").count() == 1
    assert page.errors == []


def test_collapsed_stage_counts_one_line(db_app, open_page, live_server):
    run, (single, double) = make_finished_run("counts", ["single", "double"])
    store_lines(db.engine, run.id, single.id, [PendingLine("stdout", "only line", utcnow())])
    store_lines(db.engine, run.id, double.id, [PendingLine("stdout", text, utcnow()) for text in ("one", "two")])
    page = open_page()

    page.goto(f"{live_server}/runs/{run.id}")
    page.wait_for_function("document.querySelectorAll('.log-line').length === 3", timeout=30_000)
    page.click("#collapse-all")
    save_screenshot(page, "run_log_collapsed", full_page=False)

    assert page.locator(f"#stage-{single.id} .log-stage-count").inner_text() == "1 line"
    assert page.locator(f"#stage-{double.id} .log-stage-count").inner_text() == "2 lines"
    assert page.locator("#log-count").inner_text() == "3 lines"
    assert page.errors == []


QUIET_START_PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("late", async () => {
  await new Promise((resolve) => setTimeout(resolve, 3000));
  for (let index = 1; index <= 40; index++) {
    console.log(`late ${index}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
'''


def test_stage_header_shows_status_known_before_first_line(workers, make_repo, open_page, live_server):
    run_id = start_run(make_repo, "quiet", QUIET_START_PIPELINE)
    wait_for(lambda: db.session.scalar(db.select(Stage.status).where(Stage.run_id == run_id)) == "running", timeout=120)
    page = open_page()
    # Opened while the stage runs but has printed nothing: its header is made by its first line, after the status came.
    page.goto(f"{live_server}/runs/{run_id}")
    page.wait_for_selector(".log-line:has-text('late 1')", timeout=60_000)

    stage_id = db.session.scalar(db.select(Stage.id).where(Stage.run_id == run_id))
    assert page.locator(f"#stage-{stage_id} .log-stage-status").inner_text() == "running"
    # The run must end before the next test empties the tables under its workers.
    page.wait_for_selector("#log-state:has-text('run success')", timeout=60_000)
    assert page.errors == []


LONG_NAME = "publish-to-the-registry-and-announce-the-release-everywhere"


@pytest.mark.parametrize("width, name, same_lane", [(1360, "publish-to-registry", False), (390, "publish-to-registry", False),
                                                     (390, LONG_NAME, False), (1360, "publish-to-registry", True)])
def test_timeline_label_of_short_last_stage_fits(db_app, open_page, live_server, width, name, same_lane):
    run, (build, publish) = make_finished_run("timeline", ["build", name])
    start = run.queued_at
    run.started_at, run.finished_at = start, start + timedelta(seconds=10.2)
    # Needing "build" puts the stage on build's lane, where its label must stay right of build's bar.
    build_seconds = 9 if same_lane else 10
    publish.needs = ["build"] if same_lane else []
    build.enqueued_at, build.started_at, build.finished_at = start, start, start + timedelta(seconds=build_seconds)
    publish.enqueued_at = publish.started_at = start + timedelta(seconds=10)
    publish.finished_at = start + timedelta(seconds=10.1)
    db.session.commit()
    page = open_page(width=width)

    page.goto(f"{live_server}/runs/{run.id}")
    page.wait_for_selector(f"#gantt .gantt-stage[data-stage='{name}'] text")
    chart = page.locator("#gantt").bounding_box()
    label = page.locator(f"#gantt .gantt-stage[data-stage='{name}'] text")
    box = label.bounding_box()
    build_bar = page.locator("#gantt rect.bar-run[data-stage='build']").bounding_box()
    ticks = page.locator("#gantt .tick-label")
    last_tick = ticks.nth(ticks.count() - 1).bounding_box()
    save_screenshot(page, f"run_timeline_short_last_stage_{width}_{len(name)}_{same_lane}", full_page=False)

    if name == LONG_NAME:
        assert label.text_content().endswith("…")
        assert name.startswith(label.text_content()[:-1])
    else:
        assert label.text_content() == name
    assert box["x"] >= chart["x"]
    assert box["x"] + box["width"] <= chart["x"] + chart["width"]
    assert last_tick["x"] + last_tick["width"] <= chart["x"] + chart["width"]
    if same_lane:
        assert box["x"] >= build_bar["x"] + build_bar["width"]
    assert page.locator(f"#gantt .gantt-stage[data-stage='{name}'] title").text_content().startswith(f"{name}: success")
    assert page.errors == []
