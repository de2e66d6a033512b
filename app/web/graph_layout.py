"""Positions of the stage graph's boxes and edges, for the SVG in `runs/_graph.html`."""

from dataclasses import dataclass

from app.pipelines.graph import stage_levels
from app.status import stage_label

BOX_WIDTH = 168
BOX_HEIGHT = 30
COLUMN_GAP = 44
ROW_GAP = 12
PADDING = 4


@dataclass(frozen=True)
class Box:
    name: str
    status: str
    x: int
    y: int
    anchor: str
    # The status in words, naming what a waiting stage waits for ("deploying").
    label: str = ""


@dataclass(frozen=True)
class GraphLayout:
    boxes: list[Box]
    # Cubic curves from the right edge of a need to the left edge of the stage that needs it.
    edges: list[str]
    width: int
    height: int


def layout_graph(stages: list[dict]) -> GraphLayout:
    """Place stages ({name, needs, status, anchor}) in columns by level, in the order given."""
    levels = stage_levels({stage["name"]: stage["needs"] for stage in stages})
    rows: dict[int, int] = {}
    boxes: dict[str, Box] = {}
    for stage in stages:
        column = levels[stage["name"]]
        row = rows.get(column, 0)
        rows[column] = row + 1
        boxes[stage["name"]] = Box(stage["name"], stage["status"], PADDING + column * (BOX_WIDTH + COLUMN_GAP),
                                   PADDING + row * (BOX_HEIGHT + ROW_GAP), stage.get("anchor", ""),
                                   stage.get("label") or stage["status"].replace("_", " "))
    edges = []
    for stage in stages:
        target = boxes[stage["name"]]
        for need in stage["needs"]:
            if need in boxes:
                source = boxes[need]
                x1, y1 = source.x + BOX_WIDTH, source.y + BOX_HEIGHT // 2
                x2, y2 = target.x, target.y + BOX_HEIGHT // 2
                middle = (x1 + x2) // 2
                edges.append(f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}")
    width = max((box.x + BOX_WIDTH for box in boxes.values()), default=0) + PADDING
    height = max((box.y + BOX_HEIGHT for box in boxes.values()), default=0) + PADDING
    return GraphLayout(list(boxes.values()), edges, width, height)


def run_graph(run) -> GraphLayout:
    """Lay out a run's stages with their statuses."""
    return layout_graph([{"name": stage.name, "needs": stage.needs or [], "status": stage.status,
                          "label": stage_label(stage.status, stage.waiting_for),
                          "anchor": f"stage-{stage.id}"} for stage in run.stages])


def plan_graph(plan_stages: list[dict]) -> GraphLayout:
    """Lay out a plan's stages: selected ones as queued, the others as skipped."""
    return layout_graph([{"name": stage["name"], "needs": stage.get("needs") or [],
                          "status": "queued" if stage.get("selected", True) else "skipped"} for stage in plan_stages])
