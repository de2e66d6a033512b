// The log view of a run page: lines grouped per stage, rendered in batches.
//
// Lines arrive in bursts (a stored log of 20,000 lines comes in a few messages), so they
// are queued and rendered a slice per animation frame, within a time budget, instead of
// all at once. Lines are grouped in chunks whose CSS `content-visibility: auto` lets the
// browser skip layout and paint of chunks out of view.
import { AnsiUp } from "../vendor/ansi_up.js";

const FRAME_BUDGET_MS = 8;
const CHUNK_LINES = 200;

// Stage output is the repository's code speaking, so the page keeps what `deno-ci run` keeps
// (app/cli/terminal.py has the same patterns): colour (SGR) sequences, which ansi_up turns into
// classes, and tabs. Every other escape sequence and control character is removed before
// ansi_up receives the line. So an OSC 8 hyperlink shows its text as plain text, never as a link,
// and a backspace is dropped rather than shown as a replacement box. Removing an unterminated
// sequence also keeps ansi_up from holding it back and joining it to the stage's next line.
const SGR = String.raw`\x1b\[[0-9;:]*m`;
const OTHER_ESCAPES = String.raw`(?:\x1b\[|\x9b)[0-9;:?<=>!"'$ ]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[@-_]?`;
const ESCAPES = new RegExp(`(${SGR})|${OTHER_ESCAPES}`, "g");
const CONTROLS = /[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f\x80-\x9f]/g;

function printable(text) {
  return text.replace(ESCAPES, (match, sgr) => sgr ?? "").replace(CONTROLS, "");
}

function showStage(block, stage) {
  block.title.textContent = stage.name;
  // `state` names what a waiting stage waits for ("deploying"); older servers send only `status`.
  block.status.textContent = stage.state ?? stage.status.replace("_", " ");
  block.status.className = `log-stage-status status-text-${stage.status}`;
}

// "1 line", "2 lines": the stage headers' and the log toolbar's counts.
export function lineCount(count) {
  return `${count} ${count === 1 ? "line" : "lines"}`;
}

class StageBlock {
  constructor(key, title) {
    this.ansi = new AnsiUp();
    this.ansi.use_classes = true;
    this.element = document.createElement("details");
    this.element.open = true;
    this.element.className = "log-stage";
    this.element.id = key === "run" ? "stage-run" : `stage-${key}`;
    this.summary = document.createElement("summary");
    this.title = document.createElement("span");
    this.title.className = "log-stage-title";
    this.title.textContent = title;
    this.status = document.createElement("span");
    this.status.className = "log-stage-status";
    this.counter = document.createElement("span");
    this.counter.className = "log-stage-count";
    this.summary.append(this.title, this.status, this.counter);
    this.body = document.createElement("div");
    this.body.className = "log-body";
    this.element.append(this.summary, this.body);
    this.chunk = null;
    this.lines = 0;
  }

  append(lines) {
    let html = "";
    for (const line of lines) {
      if (this.lines % CHUNK_LINES === 0) {
        if (html) this.chunk.insertAdjacentHTML("beforeend", html);
        html = "";
        this.chunk = document.createElement("div");
        this.chunk.className = "log-chunk";
        this.body.append(this.chunk);
      }
      html += `<div class="log-line stream-${line.stream}" id="L${line.seq}"><a class="line-number" href="#L${line.seq}">${line.seq}</a><span class="line-text">${this.ansi.ansi_to_html(printable(line.text))}</span></div>`;
      this.lines += 1;
    }
    if (html) this.chunk.insertAdjacentHTML("beforeend", html);
    this.counter.textContent = lineCount(this.lines);
  }
}

export class LogView {
  constructor(container, { followTail, onRendered }) {
    this.container = container;
    this.followTail = followTail;
    this.onRendered = onRendered;
    this.blocks = new Map();
    this.stageNames = new Map();
    this.pending = [];
    this.scheduled = false;
    this.lastSeq = 0;
    this.rendered = 0;
  }

  enqueue(lines) {
    for (const line of lines) this.pending.push(line);
    if (lines.length) this.lastSeq = lines[lines.length - 1].seq;
    if (!this.scheduled) {
      this.scheduled = true;
      requestAnimationFrame(() => this.flush());
    }
  }

  flush() {
    const started = performance.now();
    while (this.pending.length && performance.now() - started < FRAME_BUDGET_MS) {
      const slice = this.pending.splice(0, 500);
      this.renderSlice(slice);
    }
    if (this.followTail()) window.scrollTo(0, document.documentElement.scrollHeight);
    if (this.pending.length) {
      requestAnimationFrame(() => this.flush());
    } else {
      this.scheduled = false;
    }
    this.onRendered(this.rendered, this.pending.length);
  }

  renderSlice(slice) {
    // Consecutive lines of one stage go to its block in one insertion.
    let run = [];
    for (const line of slice) {
      if (run.length && run[0].stage_id !== line.stage_id) {
        this.block(run[0].stage_id).append(run);
        run = [];
      }
      run.push(line);
    }
    if (run.length) this.block(run[0].stage_id).append(run);
    this.rendered += slice.length;
  }

  block(stageId) {
    const key = stageId ?? "run";
    if (!this.blocks.has(key)) {
      const block = new StageBlock(key, stageId ? (this.stageNames.get(stageId) ?? `stage ${stageId}`) : "run");
      this.blocks.set(key, block);
      this.placeBlock(key, block);
      // A stage's first lines may arrive after the run's latest status, which then named its state already.
      const known = this.stages?.get(key);
      if (known) showStage(block, known);
    }
    return this.blocks.get(key);
  }

  placeBlock(key, block) {
    // Stage blocks keep the pipeline's order (the run's own messages first), whatever order lines arrive in.
    const position = (k) => (k === "run" ? -1 : (this.positions?.get(k) ?? 1e9));
    const after = [...this.blocks.entries()].find(([k, b]) => b !== block && position(k) > position(key));
    this.container.insertBefore(block.element, after ? after[1].element : null);
  }

  applyStatus(run) {
    this.positions = new Map(run.stages.map((stage) => [stage.id, stage.position]));
    this.stages = new Map(run.stages.map((stage) => [stage.id, stage]));
    for (const stage of run.stages) {
      this.stageNames.set(stage.id, stage.name);
      const block = this.blocks.get(stage.id);
      if (block) showStage(block, stage);
    }
  }

  setAllOpen(open) {
    for (const block of this.blocks.values()) block.element.open = open;
  }
}
