"""A flow's task graph as a server-rendered SVG: a small recursive layout, no JS library.

A task list is a column of nodes joined top to bottom. A flowable task opens
its branches (``then``/``else``, ``cases.x``, each task of a ``Parallel``...)
side by side below its node; each branch is a column again, and the branches
join back under the widest of them before the next task. Sizes are measured
bottom-up, then boxes are placed top-down, so the layout is a pure function of
the spec (and, for a run, of the task states that colour the nodes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.domain.tasktypes.flowable import Parallel

NODE_W, NODE_H = 176, 46
V_GAP, H_GAP, LABEL_H, MARGIN = 26, 22, 18, 12
_ID_CHARS = 22

# Which state wins when a task ran several times (loop values): the most telling one.
_STATE_RANK = ("RUNNING", "RETRYING", "KILLING", "PAUSED", "FAILED", "KILLED", "WARNING")


@dataclass(frozen=True)
class Node:
    """One task drawn as a box; ``state`` is set for a run's graph."""

    task_id: str
    kind: str
    x: float
    y: float
    state: str | None = None
    runs: int = 0


@dataclass(frozen=True)
class Edge:
    """A line from one point to another, drawn with one elbow."""

    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Graph:
    """Placed nodes, edges and branch labels, and the size they need."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    labels: list[tuple[float, float, str]] = field(default_factory=list)
    width: float = 0
    height: float = 0


Branch = tuple[str, Sequence[TaskBase]]


def _branches(task: TaskBase) -> list[Branch]:
    lists = task.child_lists()
    found: list[Branch] = []
    for name, tasks in lists.items():
        if not tasks:
            continue
        if isinstance(task, Parallel) and name == "tasks":
            # Parallel tasks are branches of their own, not a sequence.
            found.extend(("parallel", [child]) for child in tasks)
        else:
            found.append((name, tasks))
    return found


def _column_size(tasks: Sequence[TaskBase]) -> tuple[float, float]:
    sizes = [_item_size(task) for task in tasks]
    width = max((w for w, _ in sizes), default=NODE_W)
    height = sum(h for _, h in sizes) + V_GAP * max(len(sizes) - 1, 0)
    return width, height


def _branches_size(branches: Sequence[Branch]) -> tuple[float, float]:
    sizes = [_column_size(tasks) for _, tasks in branches]
    width = sum(w for w, _ in sizes) + H_GAP * max(len(sizes) - 1, 0)
    return width, LABEL_H + max((h for _, h in sizes), default=0)


def _item_size(task: TaskBase) -> tuple[float, float]:
    branches = _branches(task)
    if not branches:
        return NODE_W, NODE_H
    width, height = _branches_size(branches)
    # Branches join V_GAP below the tallest one.
    return max(NODE_W, width), NODE_H + V_GAP + height + V_GAP


class _Layout:
    def __init__(self, states: Mapping[str, tuple[str, int]]) -> None:
        self.graph = Graph()
        self.states = states

    def column(self, tasks: Sequence[TaskBase], cx: float, y: float) -> tuple[float, float]:
        """Place ``tasks`` downwards from ``y``; the column's entry and exit heights."""
        entry, previous_exit = y, None
        for task in tasks:
            top = y
            y = self.item(task, cx, y)
            if previous_exit is not None:
                self.graph.edges.append(Edge(cx, previous_exit, cx, top))
            previous_exit = y
            y += V_GAP
        return entry, previous_exit if previous_exit is not None else entry

    def branches(
        self, branches: Sequence[Branch], cx: float, y: float
    ) -> list[tuple[float, float, float]]:
        """Place branches side by side under ``y``; each one's centre, entry and exit."""
        width, _ = _branches_size(branches)
        left = cx - width / 2
        placed = []
        for name, tasks in branches:
            column_width, _ = _column_size(tasks)
            bcx = left + column_width / 2
            self.graph.labels.append((bcx, y + LABEL_H - 5, name))
            entry, exit_ = self.column(tasks, bcx, y + LABEL_H)
            placed.append((bcx, entry, exit_))
            left += column_width + H_GAP
        return placed

    def item(self, task: TaskBase, cx: float, y: float) -> float:
        """Place one task (and its branches) with its node's top at ``y``; its bottom."""
        state, runs = self.states.get(task.id, (None, 0))
        kind = task.type.rsplit(".", 1)[-1]
        self.graph.nodes.append(Node(task.id, kind, cx - NODE_W / 2, y, state, runs))
        branches = _branches(task)
        if not branches:
            return y + NODE_H
        _, height = _item_size(task)
        bottom = y + height
        for bcx, entry, exit_ in self.branches(branches, cx, y + NODE_H + V_GAP):
            self.graph.edges.append(Edge(cx, y + NODE_H, bcx, entry))
            self.graph.edges.append(Edge(bcx, exit_, cx, bottom))
        return bottom


def run_states(runs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, int]]:
    """Per task id, the state to draw and how many task runs it had, from (task id, state)."""
    seen: dict[str, list[str]] = {}
    for task_id, state in runs:
        seen.setdefault(task_id, []).append(state)
    result = {}
    for task_id, states in seen.items():
        shown = next((s for s in _STATE_RANK if s in states), states[-1])
        result[task_id] = (shown, len(states))
    return result


def flow_graph(spec: Flow, states: Mapping[str, tuple[str, int]] | None = None) -> Graph:
    """Lay out ``spec``'s task graph; ``states`` (from ``run_states``) colours a run's nodes."""
    layout = _Layout(states or {})
    lists = [(name, tasks) for name, tasks in spec.all_task_lists().items() if tasks]
    if len(lists) == 1:
        width, height = _column_size(lists[0][1])
        layout.column(lists[0][1], MARGIN + width / 2, MARGIN)
    else:
        # errors / finally sit beside the main list, each under its own label.
        width, height = _branches_size(lists)
        layout.branches(lists, MARGIN + width / 2, MARGIN)
    layout.graph.width = width + 2 * MARGIN
    layout.graph.height = height + 2 * MARGIN
    return layout.graph


def _path(edge: Edge) -> str:
    if edge.x1 == edge.x2:
        return f"M{edge.x1:g},{edge.y1:g} V{edge.y2:g}"
    middle = (edge.y1 + edge.y2) / 2
    return f"M{edge.x1:g},{edge.y1:g} V{middle:g} H{edge.x2:g} V{edge.y2:g}"


def _clip(text: str) -> str:
    return text if len(text) <= _ID_CHARS else text[: _ID_CHARS - 1] + "…"


def render_svg(
    graph: Graph, *, title: str, state_class: Mapping[str, str], run: bool = False
) -> Markup:
    """The graph as inline SVG; node colours come from the stylesheet's ``state-*`` classes.

    For a ``run``, a node without a state is drawn as "not run".
    """
    parts = [
        (
            f'<svg class="task-graph" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{escape(title)}" width="{graph.width:g}" height="{graph.height:g}" '
            f'viewBox="0 0 {graph.width:g} {graph.height:g}">'
        ),
        f"<title>{escape(title)}</title>",
    ]
    parts.extend(f'<path class="edge" d="{_path(edge)}"/>' for edge in graph.edges)
    parts.extend(
        f'<text class="branch" x="{x:g}" y="{y:g}" text-anchor="middle">{escape(name)}</text>'
        for x, y, name in graph.labels
    )
    for node in graph.nodes:
        css = state_class.get(node.state, "muted") if node.state else "none"
        detail = node.kind
        if node.state:
            detail = f"{node.state}" + (f", {node.runs} runs" if node.runs > 1 else "")
        elif run:
            css, detail = "muted", "not run"
        tooltip = f"{node.task_id} ({node.kind}): {detail}"
        parts.append(
            f'<g class="node state-{css}" data-task="{escape(node.task_id)}">'
            f"<title>{escape(tooltip)}</title>"
            f'<rect x="{node.x:g}" y="{node.y:g}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text class="id" x="{node.x + 10:g}" y="{node.y + 19:g}">'
            f"{escape(_clip(node.task_id))}</text>"
            f'<text class="kind" x="{node.x + 10:g}" y="{node.y + 36:g}">'
            f"{escape(_clip(detail))}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped
