// The run page: the live log and the timeline over the run's WebSocket, tabs, and the run's actions.
// On reconnect the socket is opened with the last sequence number rendered, so no line is lost or shown twice.
import { LogView, lineCount } from "./run_log.js";
import { drawGantt } from "./gantt.js";

const section = document.getElementById("log");
const state = document.getElementById("log-state");
const counter = document.getElementById("log-count");
const follow = document.getElementById("follow-tail");
const gantt = document.getElementById("gantt");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

let ended = false;
let retryDelay = 500;
let lastRun = null;
let highlightedSeq = null;

const wantedLine = /^#L(\d+)$/.exec(location.hash);
if (wantedLine) {
  follow.checked = false;
  highlightedSeq = Number(wantedLine[1]);
}

const view = new LogView(document.getElementById("log-lines"), {
  followTail: () => follow.checked,
  onRendered(rendered, waiting) {
    counter.textContent = waiting ? `${lineCount(rendered)}, ${waiting} to draw` : lineCount(rendered);
    if (highlightedSeq !== null) highlightLine(highlightedSeq, true);
  },
});

function highlightLine(seq, scroll) {
  const line = document.getElementById(`L${seq}`);
  if (!line) return;
  document.querySelectorAll(".log-line.highlighted").forEach((other) => other.classList.remove("highlighted"));
  line.classList.add("highlighted");
  line.closest("details").open = true;
  if (scroll) line.scrollIntoView({ block: "center" });
  highlightedSeq = scroll ? null : seq;
}

document.getElementById("log-lines").addEventListener("click", (event) => {
  const number = event.target.closest(".line-number");
  if (!number) return;
  follow.checked = false;
  highlightLine(Number(number.textContent), false);
});
document.getElementById("collapse-all").addEventListener("click", () => view.setAllOpen(false));
document.getElementById("expand-all").addEventListener("click", () => view.setAllOpen(true));

// Timeline: redrawn on every status message, and a few times a second while a stage runs, so running bars grow.
function redrawTimeline() {
  if (lastRun) drawGantt(gantt, lastRun, Date.now());
}
setInterval(() => {
  if (lastRun && !ended && lastRun.stages.some((stage) => stage.status === "running" || stage.status === "queued")) {
    requestAnimationFrame(redrawTimeline);
  }
}, 250);
window.addEventListener("resize", () => requestAnimationFrame(redrawTimeline));

function applyStatus(run) {
  lastRun = run;
  view.applyStatus(run);
  redrawTimeline();
}

// Reconnecting would be rejected again, and the run's panels would keep polling for nothing.
function stopWatching(reason) {
  ended = true;
  state.textContent = reason;
  state.className = "log-state rejected";
  for (const id of ["run-summary", "run-tests"]) {
    const panel = document.getElementById(id);
    if (!panel) continue;
    const still = panel.cloneNode(true);
    still.removeAttribute("hx-get");
    still.removeAttribute("hx-trigger");
    panel.replaceWith(still);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${section.dataset.socket}?after=${view.lastSeq}`);
  socket.onopen = () => {
    state.textContent = "live";
    state.className = "log-state live";
    retryDelay = 500;
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "lines") view.enqueue(event.lines);
    if (event.type === "status") applyStatus(event.run);
    if (event.type === "rejected") stopWatching(event.reason);
    if (event.type === "end") {
      ended = true;
      state.textContent = `run ${event.status}`;
      state.className = "log-state";
      redrawTimeline();
      if (window.htmx) {
        htmx.trigger("#run-summary", "refresh");
        htmx.ajax("GET", `/runs/${section.dataset.runId}/tests`, { target: "#run-tests", swap: "outerHTML" });
      }
    }
  };
  socket.onclose = (closing) => {
    if (ended) return;
    // 1008: the server rejected this page's socket (signed out, or no longer allowed to view the project).
    if (closing.code === 1008) {
      stopWatching(closing.reason || "You may no longer watch this log.");
      return;
    }
    state.textContent = "reconnecting…";
    state.className = "log-state";
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}

// Tabs: Log and Tests.
document.querySelectorAll(".tab-bar .tab").forEach((tab) => {
  tab.addEventListener("click", () => {
    document.querySelectorAll(".tab-bar .tab").forEach((other) => {
      const selected = other === tab;
      other.classList.toggle("active", selected);
      other.setAttribute("aria-selected", String(selected));
      document.getElementById(other.dataset.tab).hidden = !selected;
    });
  });
});

// Approve, cancel and re-run call the JSON API; the summary fragment refreshes itself afterwards.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-run-action]");
  if (!button) return;
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const action = button.dataset.runAction;
  const response = await fetch(button.dataset.url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    body: JSON.stringify(action === "rerun-failed" ? { failed_only: true } : {}),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    button.disabled = false;
    alert(body.detail || `The request failed (${response.status}).`);
    return;
  }
  if (action === "cancel" || action === "approve") htmx.trigger("#run-summary", "refresh");
  else location.href = body.url;
});

connect();
