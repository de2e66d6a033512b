// The run's timeline as SVG: one bar per stage, stages of one level of needs on separate lanes.
// The queued part of a bar (handed to the queue, not yet started) is drawn apart from the running part.

const SVG = "http://www.w3.org/2000/svg";
const LANE_HEIGHT = 26;
const BAR_HEIGHT = 18;
const AXIS_HEIGHT = 22;
const LEFT = 8;
const RIGHT = 12;
// Space between a bar's edge and its label, inside or beside it.
const LABEL_PADDING = 6;
const LABEL_GAP = 4;
// Average width of a label's character at 11.5 px: an estimate, used only where the chart is not laid
// out (inside a hidden element), because getComputedTextLength() then returns 0.
const CHARACTER_WIDTH = 6.5;

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Level of a stage: 0 when it needs nothing, else one more than its deepest need.
export function stageLevels(stages) {
  const byName = new Map(stages.map((stage) => [stage.name, stage]));
  const levels = new Map();
  const level = (name, visiting) => {
    if (levels.has(name)) return levels.get(name);
    const needs = (byName.get(name).needs || []).filter((need) => byName.has(need) && !visiting.has(need));
    const result = needs.length ? Math.max(...needs.map((need) => level(need, new Set([...visiting, name])) + 1)) : 0;
    levels.set(name, result);
    return result;
  };
  for (const stage of stages) level(stage.name, new Set());
  return levels;
}

// Lane of each stage: its index among the stages of its level, in pipeline order.
export function stageLanes(stages) {
  const levels = stageLevels(stages);
  const used = new Map();
  const lanes = new Map();
  for (const stage of [...stages].sort((a, b) => a.position - b.position)) {
    const level = levels.get(stage.name);
    lanes.set(stage.name, used.get(level) ?? 0);
    used.set(level, (used.get(level) ?? 0) + 1);
  }
  return lanes;
}

function tickStep(seconds) {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  return steps.find((step) => seconds / step <= 6) ?? 14400;
}

function tickLabel(seconds) {
  if (seconds < 60) return `${Number(seconds.toFixed(1))}s`;
  const minutes = Math.floor(seconds / 60);
  return seconds % 60 ? `${minutes}m${Math.round(seconds % 60)}s` : `${minutes}m`;
}

const time = (value) => (value ? Date.parse(value) : null);

function labelWidth(label) {
  return label.getComputedTextLength() || label.textContent.length * CHARACTER_WIDTH;
}

// Put a stage's name inside its running bar where it fits, else beside the bar on the side with
// more room, since the last stage's short bar ends at the chart's right edge. On the left the room ends
// at `laneRight`, where the lane's earlier stages end. A name longer than that room is cut with
// an ellipsis, and the stage's title shows it whole on hover. Returns the right edge of the bar and label.
function addLabel(group, name, { barLeft, barRight, stageLeft, laneRight, y, width }) {
  const label = element("text", { x: barLeft + LABEL_PADDING, y: y + 13, class: "bar-label" }, name);
  group.append(label);
  if (labelWidth(label) + 2 * LABEL_PADDING <= barRight - barLeft) return barRight;

  label.setAttribute("class", "bar-label-outside");
  const roomRight = width - barRight - LABEL_GAP;
  const roomLeft = stageLeft - laneRight - 2 * LABEL_GAP;
  const onRight = labelWidth(label) <= roomRight || roomRight >= roomLeft;
  if (onRight) {
    label.setAttribute("x", barRight + LABEL_GAP);
  } else {
    label.setAttribute("x", stageLeft - LABEL_GAP);
    label.setAttribute("text-anchor", "end");
  }
  shorten(label, onRight ? roomRight : roomLeft);
  return onRight ? barRight + LABEL_GAP + labelWidth(label) : barRight;
}

function shorten(label, room) {
  const name = label.textContent;
  for (let length = name.length - 1; length > 0 && labelWidth(label) > room; length -= 1) {
    label.textContent = `${name.slice(0, length)}…`;
  }
}

export function drawGantt(svg, run, now) {
  const stages = run.stages.filter((stage) => stage.queued_at || stage.started_at);
  const lanes = stageLanes(run.stages);
  const laneCount = Math.max(1, ...stages.map((stage) => lanes.get(stage.name) + 1));
  const start = Math.min(time(run.queued_at), ...stages.map((stage) => time(stage.queued_at) ?? time(stage.started_at)));
  const ends = stages.map((stage) => time(stage.finished_at) ?? (stage.status === "running" || stage.status === "queued" ? now : time(stage.started_at) ?? now));
  const end = Math.max(start + 1000, time(run.finished_at) ?? now, ...ends);
  const width = Math.max(svg.clientWidth || svg.parentNode.clientWidth || 600, 320);
  const height = AXIS_HEIGHT + laneCount * LANE_HEIGHT + 4;
  const scale = (width - LEFT - RIGHT) / (end - start);
  const x = (moment) => LEFT + (moment - start) * scale;

  svg.replaceChildren();
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = element("defs", {});
  const pattern = element("pattern", { id: "queued-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pattern.append(element("rect", { width: 6, height: 6, class: "hatch-back" }), element("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  defs.append(pattern);
  svg.append(defs);

  const step = tickStep((end - start) / 1000);
  for (let second = 0; second * 1000 <= end - start; second += step) {
    const position = x(start + second * 1000);
    svg.append(element("line", { x1: position, x2: position, y1: AXIS_HEIGHT - 4, y2: height, class: "tick" }));
    const tick = element("text", { x: position + 3, y: 12, class: "tick-label" }, tickLabel(second));
    svg.append(tick);
    // The last tick can sit at the chart's right edge, so its label goes left of the line there.
    if (position + 3 + labelWidth(tick) > width) {
      tick.setAttribute("x", position - 3);
      tick.setAttribute("text-anchor", "end");
    }
  }
  for (let lane = 0; lane < laneCount; lane += 1) {
    if (lane % 2) svg.append(element("rect", { x: 0, y: AXIS_HEIGHT + lane * LANE_HEIGHT, width, height: LANE_HEIGHT, class: "lane-alt" }));
  }

  if (!stages.length) {
    svg.append(element("text", { x: LEFT, y: AXIS_HEIGHT + 16, class: "tick-label" }, "No stage has been queued yet."));
  }
  // The right edge of what each lane shows so far, bars and labels.
  const laneRights = new Map();
  stages.forEach((stage, index) => {
    const lane = lanes.get(stage.name);
    const y = AXIS_HEIGHT + lane * LANE_HEIGHT + (LANE_HEIGHT - BAR_HEIGHT) / 2;
    const queued = time(stage.queued_at);
    const started = time(stage.started_at);
    const finished = time(stage.finished_at) ?? (stage.status === "running" ? now : null);
    const group = element("g", { class: "gantt-stage", "data-stage": stage.name, "data-lane": lane });
    // In the document before its label is added, so that the label's width can be measured.
    svg.append(group);
    const waitEnd = started ?? (stage.status === "queued" ? now : ends[index]);
    if (queued !== null && waitEnd > queued) {
      group.append(element("rect", { x: x(queued), y, width: Math.max(1, (waitEnd - queued) * scale), height: BAR_HEIGHT, class: "bar-queued", rx: 3 }));
    }
    if (started !== null) {
      const barWidth = Math.max(2, ((finished ?? started) - started) * scale);
      group.append(element("rect", { x: x(started), y, width: barWidth, height: BAR_HEIGHT, rx: 3, class: `bar-run bar-${stage.status}`, "data-stage": stage.name, "data-lane": lane }));
      const stageLeft = queued !== null && waitEnd > queued ? Math.min(x(queued), x(started)) : x(started);
      const laneRight = laneRights.get(lane) ?? 0;
      const right = addLabel(group, stage.name, { barLeft: x(started), barRight: x(started) + barWidth, stageLeft, laneRight, y, width });
      laneRights.set(lane, Math.max(laneRight, right));
    }
    const seconds = (moment) => (moment === null ? "–" : `${((moment) / 1000).toFixed(1)} s`);
    group.append(element("title", {}, `${stage.name}: ${stage.state ?? stage.status.replace("_", " ")} · queued ${seconds(started !== null && queued !== null ? started - queued : null)} · ran ${seconds(started !== null && finished !== null ? finished - started : null)}`));
  });
}
