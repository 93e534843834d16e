"""Pictures of journeys: a compiled journey as a flowchart.

In: a ``dsl.ir.Journey``. Out: a ``Graph`` (nodes and labelled edges) from
``build_graph``, drawn as Mermaid flowchart text by ``to_mermaid`` or as a standalone SVG
by ``to_svg`` (a small layered layout, top-down; no Graphviz or browser needed).

The graph follows the plan: the trigger (with its ``when``) first, one node per step,
``if`` and ``wait for`` as decisions whose branches join the step after them, ``exit`` as a
terminal node, and one ``end`` node where every other path finishes. A ``goal`` is a
note beside the trigger. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape as html_escape

from dsl.clock import human_duration  # noqa: F401  (re-exported: graph callers use it)
from dsl.ir import Expr, Journey, Step

# --------------------------------------------------------------------------- model

# Shapes, named after what they mean; each drawer maps them to its own syntax.
START, STEP, WAIT, DECISION, CALL, SET, STOP, NOTE = (
    "start", "step", "wait", "decision", "call", "set", "stop", "note",
)  # fmt: skip


@dataclass
class Node:
    id: str
    shape: str
    lines: list[str]  # the label, one entry per line, unescaped


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""
    dotted: bool = False


@dataclass
class Graph:
    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def _with(args: dict[str, Expr]) -> list[str]:
    if not args:
        return []
    return ["with " + ", ".join(f"{k}={v.src}" for k, v in args.items())]


class _Builder:
    def __init__(self, journey: Journey) -> None:
        self.graph = Graph(title=journey.name)
        self.count = 0

    def add(self, shape: str, lines: list[str], node_id: str | None = None) -> str:
        if node_id is None:
            node_id = f"s{self.count}"
            self.count += 1
        self.graph.nodes.append(Node(node_id, shape, lines))
        return node_id

    def link(self, ends: list[tuple[str, str]], dst: str) -> None:
        for src, label in ends:
            self.graph.edges.append(Edge(src, dst, label))

    def block(self, steps: list[Step], ends: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Draw ``steps`` after the loose ends ``ends``; return the block's loose ends.

        A loose end is (node, edge label): an arrow still waiting for the next node.
        An empty block returns its ends unchanged, so an ``if`` without ``else`` has its
        ``no`` arrow go straight to the step after the ``if``.
        """
        for step in steps:
            node = self.add(*self.describe(step))
            self.link(ends, node)
            if step.kind == "exit":
                ends = []
            elif step.kind == "if":
                ends = self.block(step.then, [(node, "yes")]) + self.block(
                    step.else_, [(node, "no")]
                )
            elif step.kind == "split":
                ends = []
                for v in step.variants:
                    ends += self.block(v.steps, [(node, f"{v.name} {v.weight / 100:g}%")])
            elif step.kind == "wait_for":
                timeout = f"timeout ({human_duration(step.seconds)})"
                ends = self.block(step.received, [(node, "received")]) + self.block(
                    step.timeout, [(node, timeout)]
                )
            else:
                ends = [(node, "")]
        return ends

    @staticmethod
    def describe(s: Step) -> tuple[str, list[str]]:
        if s.kind == "send":
            return STEP, [f"send {s.template}", *_with(s.args)]
        if s.kind == "notify":
            return STEP, [f"notify {s.team}", f"with {s.template}", *_with(s.args)]
        if s.kind == "wait":
            return WAIT, [f"wait {human_duration(s.seconds)}"]
        if s.kind == "wait_until":
            if s.minutes is not None:
                return WAIT, [f"wait until {s.minutes // 60:02d}:{s.minutes % 60:02d}"]
            return WAIT, [f"wait until {s.at.src}"]
        if s.kind == "wait_for":
            where = [f"where {s.where.src}"] if s.where is not None else []
            return DECISION, [f"wait for {s.event}", *where, f"within {human_duration(s.seconds)}"]
        if s.kind == "if":
            return DECISION, [f"if {s.cond.src}"]
        if s.kind == "split":
            return DECISION, [f"split {s.experiment}"]
        if s.kind == "call":
            args = [f"{k}={v.src}" for k, v in s.args.items()]
            bind = [f"as {s.bind}"] if s.bind else []
            one_line = f"call {s.activity}({', '.join(args)})"
            if len(one_line) <= 48:
                return CALL, [one_line, *bind]
            # One argument a line, so the box stays narrow.
            lines = [f"call {s.activity}("] + [f"{a}," for a in args[:-1]] + [f"{args[-1]})"]
            return CALL, [*lines, *bind]
        if s.kind == "set":
            target = f"customer.{s.name}" if s.target == "customer" else s.name
            return SET, [f"set {target} = {s.value.src}"]
        if s.kind == "exit":
            return STOP, ["exit"]
        raise ValueError(f"unknown step kind {s.kind!r}")


def build_graph(journey: Journey) -> Graph:
    """The journey as nodes and edges, in the order the plan is written."""
    b = _Builder(journey)
    start_lines = ["on " + ", or ".join(str(t) for t in journey.triggers)]
    if journey.when is not None:
        start_lines.append(f"when {journey.when.src}")
    start = b.add(START, start_lines, "start")
    if journey.goal:
        b.add(NOTE, [f"goal: {journey.goal}", "ends the journey when it arrives"], "goal")
        b.graph.edges.append(Edge("start", "goal", dotted=True))
    ends = b.block(journey.steps, [(start, "")])
    if ends or not journey.steps:
        b.link(ends, b.add(STOP, ["end"], "done"))
    return b.graph


# --------------------------------------------------------------------------- Mermaid

# Mermaid decodes "#name;" / "#123;" entity codes in labels. Inside a quoted label only
# the quote ends the string, but "<" and "&" would reach the HTML label as markup, and a
# literal "#" could start an entity code, so all of these are written as codes.
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;"}


def mermaid_text(text: str) -> str:
    """``text`` made safe inside a double-quoted Mermaid label."""
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def _mermaid_label(lines: list[str]) -> str:
    return '"' + "<br/>".join(mermaid_text(line) for line in lines) + '"'


_MERMAID_SHAPES = {
    START: ("([", "])"),
    STEP: ("[", "]"),
    WAIT: ("(", ")"),
    DECISION: ("{", "}"),
    CALL: ("[[", "]]"),
    SET: ("[/", "/]"),
    STOP: ("([", "])"),
    NOTE: (">", "]"),
}


def to_mermaid(graph: Graph) -> str:
    """Mermaid flowchart text (``flowchart TD``), one node or edge per line."""
    out = [f"%% journey {graph.title}", "flowchart TD"]
    for n in graph.nodes:
        left, right = _MERMAID_SHAPES[n.shape]
        out.append(f"    {n.id}{left}{_mermaid_label(n.lines)}{right}")
    for e in graph.edges:
        arrow = "-.-" if e.dotted else "-->"
        label = f'|"{mermaid_text(e.label)}"|' if e.label else ""
        out.append(f"    {e.src} {arrow}{label} {e.dst}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- SVG

CHAR_W = 7.2  # monospace 12px: width of one character
LINE_H = 16
PAD_X, PAD_Y = 14, 9
GAP_X, GAP_Y = 36, 64
MARGIN = 24
DUMMY = "dummy"

_FILL = {
    START: "#e8f1fb",
    STEP: "#ffffff",
    WAIT: "#f3f3f3",
    DECISION: "#fff6dc",
    CALL: "#eef7ee",
    SET: "#eef7ee",
    STOP: "#e8f1fb",
    NOTE: "#fffbe6",
}


@dataclass
class _Box:
    id: str
    shape: str
    lines: list[str]
    w: float
    h: float
    layer: int = 0
    x: float = 0.0  # centre
    y: float = 0.0  # top


def _layers(graph: Graph) -> dict[str, int]:
    """Longest-path layering: each node sits one layer below its lowest predecessor."""
    layer = {n.id: 0 for n in graph.nodes}
    # The graph is acyclic and edges are added in step order, so a few relaxation
    # passes (at most one per node) settle it.
    for _ in range(len(graph.nodes)):
        changed = False
        for e in graph.edges:
            want = layer[e.src] + 1
            if layer[e.dst] < want:
                layer[e.dst], changed = want, True
        if not changed:
            break
    return layer


def layout(graph: Graph) -> tuple[dict[str, _Box], list[tuple[Edge, list[str]]]]:
    """Boxes with positions, and each edge as the chain of box ids it passes through.

    A long edge gets an invisible dummy box in every layer it crosses, so it bends
    around the nodes of those layers instead of running through them.
    """
    layer = _layers(graph)
    boxes: dict[str, _Box] = {}
    for n in graph.nodes:
        w = max(len(line) for line in n.lines) * CHAR_W + 2 * PAD_X
        if n.shape == DECISION:
            w += 2 * PAD_X  # room for the pointed ends
        h = len(n.lines) * LINE_H + 2 * PAD_Y
        boxes[n.id] = _Box(n.id, n.shape, n.lines, w, h, layer[n.id])
    routes: list[tuple[Edge, list[str]]] = []
    for i, e in enumerate(graph.edges):
        chain = [e.src]
        for k, lay in enumerate(range(layer[e.src] + 1, layer[e.dst])):
            dummy = f"_{i}_{k}"
            boxes[dummy] = _Box(dummy, DUMMY, [], 0, 0, lay)
            chain.append(dummy)
        chain.append(e.dst)
        routes.append((e, chain))

    rows: dict[int, list[str]] = {}
    for b in boxes.values():  # insertion order: the order the plan is written
        rows.setdefault(b.layer, []).append(b.id)
    parents: dict[str, list[str]] = {b: [] for b in boxes}
    for _, chain in routes:
        for a, c in zip(chain, chain[1:], strict=False):
            parents[c].append(a)

    # One top-down pass: order each row by its parents' positions (barycentre), then
    # place every box as close above its parents' centre as its neighbours allow.
    y = float(MARGIN)
    for lay in sorted(rows):
        row = rows[lay]
        if lay > 0:
            row.sort(key=lambda b: _mean([boxes[p].x for p in parents[b]], 0.0))
        want = [_mean([boxes[p].x for p in parents[b]], 0.0) for b in row]
        xs: list[float] = []
        for i, b in enumerate(row):
            x = want[i]
            if xs:
                prev = boxes[row[i - 1]]
                x = max(x, xs[-1] + prev.w / 2 + GAP_X + boxes[b].w / 2)
            xs.append(x)
        # Pushing right drifts the row; shift it back so it is centred on what it wants.
        shift = _mean([w - x for w, x in zip(want, xs, strict=True)], 0.0)
        height = max(boxes[b].h for b in row)
        for b, x in zip(row, xs, strict=True):
            boxes[b].x = x + shift
            boxes[b].y = y + (height - boxes[b].h) / 2
        y += max(height, 1) + GAP_Y

    left = min(b.x - b.w / 2 for b in boxes.values())
    for b in boxes.values():
        b.x += MARGIN - left
    return boxes, routes


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _shape_svg(b: _Box) -> str:
    x0, y0, x1, y1 = b.x - b.w / 2, b.y, b.x + b.w / 2, b.y + b.h
    style = f'fill="{_FILL[b.shape]}" stroke="#555" stroke-width="1.2"'
    if b.shape == DECISION:
        mid, tip = (y0 + y1) / 2, PAD_X * 1.5
        pts = [
            (x0, mid),
            (x0 + tip, y0),
            (x1 - tip, y0),
            (x1, mid),
            (x1 - tip, y1),
            (x0 + tip, y1),
        ]
        return f'<polygon points="{_points(pts)}" {style}/>'
    if b.shape == SET:
        s = 8
        pts = [(x0 + s, y0), (x1 + s, y0), (x1 - s, y1), (x0 - s, y1)]
        return f'<polygon points="{_points(pts)}" {style}/>'
    if b.shape == NOTE:
        pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0 + 10, (y0 + y1) / 2)]
        return f'<polygon points="{_points(pts)}" {style} stroke-dasharray="4 3"/>'
    radius = {START: b.h / 2, STOP: b.h / 2, WAIT: 10}.get(b.shape, 3)
    rect = (
        f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" '
        f'rx="{radius:.1f}" {style}/>'
    )
    if b.shape == CALL:  # a subroutine: a bar inside each side
        rect += (
            f'<line x1="{x0 + 6:.1f}" y1="{y0:.1f}" x2="{x0 + 6:.1f}" y2="{y1:.1f}" stroke="#555"/>'
            f'<line x1="{x1 - 6:.1f}" y1="{y0:.1f}" x2="{x1 - 6:.1f}" y2="{y1:.1f}" stroke="#555"/>'
        )
    return rect


def _points(pts: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def to_svg(graph: Graph) -> str:
    """A standalone SVG document of the graph, laid out top-down."""
    boxes, routes = layout(graph)
    width = max(b.x + b.w / 2 for b in boxes.values()) + MARGIN
    height = max(b.y + b.h for b in boxes.values()) + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="ui-monospace, Menlo, Consolas, monospace" font-size="12">',
        f"<title>journey {html_escape(graph.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    for e, chain in routes:
        pts = []
        for i, bid in enumerate(chain):
            b = boxes[bid]
            if i == 0:
                pts.append((b.x, b.y + b.h))
            elif i == len(chain) - 1:
                pts.append((b.x, b.y))
            else:  # a dummy: pass through its layer vertically
                pts.extend([(b.x, b.y - GAP_Y / 4), (b.x, b.y + GAP_Y / 4)])
        dash = ' stroke-dasharray="4 3"' if e.dotted else ""
        marker = "" if e.dotted else ' marker-end="url(#arrow)"'
        out.append(
            f'<polyline points="{_points(pts)}" fill="none" stroke="#555" '
            f'stroke-width="1.2"{dash}{marker}/>'
        )
        if e.label:
            # Beside the middle of the first segment, on the side the arrow leans to,
            # so the labels of two branches leaving one decision never overlap.
            (ax, ay), (bx, by) = pts[0], pts[1]
            lx, ly = (ax + bx) / 2, (ay + by) / 2
            lw = len(e.label) * CHAR_W
            left = lx - 6 - lw if bx < ax else lx + 6
            out.append(
                f'<rect x="{left - 2:.1f}" y="{ly - 9:.1f}" width="{lw + 4:.1f}" height="16" '
                f'fill="#ffffff" opacity="0.85"/>'
                f'<text x="{left:.1f}" y="{ly + 3:.1f}" fill="#333">{html_escape(e.label)}</text>'
            )
    for b in boxes.values():
        if b.shape == DUMMY:
            continue
        out.append(f'<g id="{html_escape(b.id)}">{_shape_svg(b)}')
        for i, line in enumerate(b.lines):
            ty = b.y + PAD_Y + LINE_H * i + 12
            out.append(
                f'<text x="{b.x:.1f}" y="{ty:.1f}" text-anchor="middle">{html_escape(line)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
