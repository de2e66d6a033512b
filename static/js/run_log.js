// Live log of a run: reads stored lines, then the live tail, over the run's WebSocket.
// On reconnect it sends the last sequence number it has, so no line is lost or shown twice.
import { AnsiUp } from "../vendor/ansi_up.js";

const section = document.getElementById("log");
const container = document.getElementById("log-lines");
const state = document.getElementById("log-state");
const ansi = new AnsiUp();
ansi.use_classes = true;

let lastSeq = 0;
let ended = false;
let retryDelay = 500;
const stageNames = new Map();
const stageBlocks = new Map();

function stageBlock(stageId) {
  const key = stageId ?? "run";
  if (!stageBlocks.has(key)) {
    const block = document.createElement("details");
    block.open = true;
    block.className = "log-stage";
    block.id = stageId ? `stage-${stageId}` : "stage-run";
    const summary = document.createElement("summary");
    summary.textContent = stageId ? (stageNames.get(stageId) ?? `stage ${stageId}`) : "run";
    const body = document.createElement("div");
    body.className = "log-body";
    block.append(summary, body);
    container.append(block);
    stageBlocks.set(key, block);
  }
  return stageBlocks.get(key).querySelector(".log-body");
}

function appendLines(lines) {
  const followTail = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  for (const line of lines) {
    const row = document.createElement("div");
    row.className = `log-line stream-${line.stream}`;
    row.id = `L${line.seq}`;
    const number = document.createElement("a");
    number.className = "line-number";
    number.href = `#L${line.seq}`;
    number.textContent = line.seq;
    const text = document.createElement("span");
    text.className = "line-text";
    text.innerHTML = ansi.ansi_to_html(line.text);
    row.append(number, text);
    stageBlock(line.stage_id).append(row);
    lastSeq = line.seq;
  }
  if (followTail) window.scrollTo(0, document.body.scrollHeight);
}

function applyStatus(run) {
  for (const stage of run.stages) {
    stageNames.set(stage.id, stage.name);
    const block = stageBlocks.get(stage.id);
    if (block) block.querySelector("summary").textContent = `${stage.name} · ${stage.status.replace("_", " ")}`;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${section.dataset.socket}?after=${lastSeq}`);
  socket.onopen = () => { state.textContent = "live"; retryDelay = 500; };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "lines") appendLines(event.lines);
    if (event.type === "status") applyStatus(event.run);
    if (event.type === "end") { ended = true; state.textContent = `run ${event.status}`; }
  };
  socket.onclose = () => {
    if (ended) return;
    state.textContent = "reconnecting…";
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}

connect();
