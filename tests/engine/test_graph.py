"""``lifecycle graph``: shipped journeys as Mermaid flowcharts and SVG, label escaping,
unknown journeys."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dsl.ir import Call, Exit, Expr, If, Journey, Origin, Send, Set, Wait, WaitFor
from engine.cli import ExitCode, main
from engine.tools.graph import build_graph, human_duration, mermaid_text, to_mermaid, to_svg

ROOT = Path(__file__).resolve().parents[2]
RULES, TEMPLATES = str(ROOT / "rules"), str(ROOT / "templates")
AT = Origin("test.yaml", 1, 1)

_NODE = re.compile(r"    (\w+)(\(\[|\[\[|\[/|\[|\(|\{|>)\"(.*)\"(\]\)|\]\]|/\]|\]|\)|\})$")
_EDGE = re.compile(r'    (\w+) (-->|-\.-)(?:\|"(.*)"\|)? (\w+)$')


def mermaid(journey: str) -> str:
    return _run_graph(journey)


def _run_graph(*argv: str) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["graph", *argv, "--rules", RULES, "--templates", TEMPLATES])
    assert code == ExitCode.OK
    return buf.getvalue()


def parse(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    """Node labels by id, and edges as (source label, edge label, target label).

    Every line after the header must be a node or an edge, so a label that breaks the
    Mermaid syntax fails here.
    """
    lines = text.splitlines()
    assert lines[1] == "flowchart TD"
    labels, edges = {}, []
    for line in lines[2:]:
        if m := _NODE.match(line):
            labels[m[1]] = m[3]
        elif m := _EDGE.match(line):
            edges.append((m[1], m[3] or "", m[4]))
        else:
            raise AssertionError(f"not a node or an edge: {line!r}")
    return labels, {(labels[a], label, labels[b]) for a, label, b in edges}


def test_welcome_series_branches_join_the_next_step():
    labels, edges = parse(mermaid("welcome-series"))
    nudge_if = "if default(customer.orders_count, 0) == 0"
    wait_for = "wait for order.placed<br/>within 5 days"
    assert edges == {
        ("on customer.signed_up<br/>when customer.marketing_opt_in", "", "send welcome"),
        ("on customer.signed_up<br/>when customer.marketing_opt_in", "",
         "goal: subscription.started<br/>ends the journey when it arrives"),
        ("send welcome", "", "wait 2 days"),
        ("wait 2 days", "", nudge_if),
        (nudge_if, "yes", "send first-order-nudge<br/>with discount=10"),
        ("send first-order-nudge<br/>with discount=10", "", wait_for),
        (wait_for, "received", "send first-order-thanks"),
        (wait_for, "timeout (5 days)", "send first-order-last-call<br/>with discount=15"),
        (nudge_if, "no", "send first-order-thanks"),
        # All three branches join the step after the if.
        ("send first-order-thanks", "", "wait 1 week"),
        ("send first-order-last-call<br/>with discount=15", "", "wait 1 week"),
        ("wait 1 week", "", "if customer.orders_count #gt;= 1"),
        ("if customer.orders_count #gt;= 1", "yes", "send club-invite"),
        ("send club-invite", "", "end"),
        # An if without else: "no" goes straight on, here to the end.
        ("if customer.orders_count #gt;= 1", "no", "end"),
    }  # fmt: skip
    # first-order-thanks is sent from two places: two nodes, not one shared node.
    assert list(labels.values()).count("send first-order-thanks") == 2


def test_shapes_in_the_mermaid_text():
    text = mermaid("welcome-series")
    assert text.startswith("%% journey welcome-series\nflowchart TD\n")
    assert '    start(["on customer.signed_up<br/>when customer.marketing_opt_in"])\n' in text
    assert '    goal>"goal: subscription.started<br/>ends the journey when it arrives"]\n' in text
    assert "    start -.- goal\n" in text
    assert '    s1("wait 2 days")\n' in text
    assert '    s2{"if default(customer.orders_count, 0) == 0"}\n' in text
    assert '    s4{"wait for order.placed<br/>within 5 days"}\n' in text
    assert '    done(["end"])\n' in text


def test_complaint_handling_escalation_ladder():
    _, edges = parse(mermaid("complaint-handling"))
    where = "where event.complaint_id == trigger.complaint_id"
    rung1 = f"wait for complaint.resolved<br/>{where}<br/>within 4 hours"
    rung2 = f"wait for complaint.resolved<br/>{where}<br/>within 20 hours"
    watch = f"wait for complaint.resolved<br/>{where}<br/>within 1 week"
    call = (
        "call create_ticket(<br/>priority=#quot;urgent#quot;,<br/>"
        "complaint=trigger.complaint_id,<br/>summary=trigger.subject)<br/>as ticket"
    )
    ladder = [
        ("on complaint.opened", "", "send complaint-received"),
        ("send complaint-received", "", "notify support<br/>with complaint-new"),
        ("notify support<br/>with complaint-new", "", rung1),
        (rung1, "received", "wait 1 day"),
        (rung1, "timeout (4 hours)",
         "notify team-lead<br/>with complaint-overdue<br/>with hours_open=4"),
        ("notify team-lead<br/>with complaint-overdue<br/>with hours_open=4", "", rung2),
        (rung2, "received", "wait 1 day"),
        (rung2, "timeout (20 hours)",
         "notify head-of-support<br/>with complaint-escalated<br/>with hours_open=24"),
        ("notify head-of-support<br/>with complaint-escalated<br/>with hours_open=24", "", call),
        (call, "", "set customer.open_ticket = ticket.id"),
        ("set customer.open_ticket = ticket.id", "", "send complaint-update"),
        ("send complaint-update", "", watch),
        (watch, "received", "set customer.open_ticket = null"),
        (watch, "timeout (1 week)", "end"),
        ("send complaint-survey", "", "end"),
    ]  # fmt: skip
    for edge in ladder:
        assert edge in edges, edge


def test_labels_are_escaped_for_mermaid():
    assert mermaid_text('say "hi" <b>#1</b> & [x] {y} (z)') == (
        "say #quot;hi#quot; #lt;b#gt;#35;1#lt;/b#gt; #amp; [x] {y} (z)"
    )
    journey = Journey(
        name="odd",
        trigger="order.placed",
        origin=AT,
        when=Expr('customer.name != "]) --> x"', []),
        steps=[
            If(AT, Expr('lower(customer.tier) in ["gold", "vip"]', []),
               then=[Send(AT, "vip", {"note": Expr('"#1 <fan>"', [])})]),
            Set(AT, "var", "label", Expr('"a|b"', [])),
        ],
    )  # fmt: skip
    text = to_mermaid(build_graph(journey))
    assert (
        '    start(["on order.placed<br/>when customer.name != #quot;]) --#gt; x#quot;"])' in text
    )
    assert '    s0{"if lower(customer.tier) in [#quot;gold#quot;, #quot;vip#quot;]"}' in text
    assert '    s1["send vip<br/>with note=#quot;#35;1 #lt;fan#gt;#quot;"]' in text
    assert '    s2[/"set label = #quot;a|b#quot;"/]' in text
    parse(text)  # every line is still one node or one edge


def test_exit_ends_a_path_and_empty_branches_fall_through():
    journey = Journey(
        name="j",
        trigger="t.x",
        origin=AT,
        steps=[
            WaitFor(AT, "order.placed", 3600, received=[Exit(AT)]),
            Call(AT, "create_ticket", {"priority": Expr('"low"', [])}, bind="ticket"),
            Wait(AT, 90),
        ],
    )
    labels, edges = parse(to_mermaid(build_graph(journey)))
    wait_for = "wait for order.placed<br/>within 1 hour"
    assert edges == {
        ("on t.x", "", wait_for),
        (wait_for, "received", "exit"),
        (
            wait_for,
            "timeout (1 hour)",
            "call create_ticket(priority=#quot;low#quot;)<br/>as ticket",
        ),
        ("call create_ticket(priority=#quot;low#quot;)<br/>as ticket", "", "wait 90 seconds"),
        ("wait 90 seconds", "", "end"),
    }
    assert sorted(labels) == ["done", "s0", "s1", "s2", "s3", "start"]


def test_a_journey_that_always_exits_has_no_end_node():
    journey = Journey(name="j", trigger="t.x", origin=AT, steps=[Exit(AT)])
    assert to_mermaid(build_graph(journey)) == (
        '%% journey j\nflowchart TD\n    start(["on t.x"])\n    s0(["exit"])\n    start --> s0\n'
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30 seconds"), (60, "1 minute"), (5400, "90 minutes"), (3600, "1 hour"),
     (129600, "36 hours"), (86400, "1 day"), (172800, "2 days"), (604800, "1 week"),
     (1209600, "2 weeks"), (864000, "10 days")],
)  # fmt: skip
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_svg_is_well_formed_and_draws_every_node(tmp_path, capsys):
    out = tmp_path / "pics" / "orders.svg"
    code = main(
        ["graph", "order-follow-up", "--format", "svg", "--out", str(out),
         "--rules", RULES, "--templates", TEMPLATES]
    )  # fmt: skip
    stdout, err = capsys.readouterr()
    assert code == ExitCode.OK
    assert stdout == ""
    assert err == f"wrote {out}\n"
    ns = {"s": "http://www.w3.org/2000/svg"}
    root = ET.fromstring(out.read_text(encoding="utf-8"))
    graph = build_graph(_journey("order-follow-up"))
    groups = {g.get("id"): g for g in root.iterfind("s:g", ns)}
    assert set(groups) == {n.id for n in graph.nodes}
    for node in graph.nodes:
        texts = [t.text for t in groups[node.id].iterfind("s:text", ns)]
        assert texts == node.lines
    # One line per edge, each ending in an arrow.
    assert len(root.findall("s:polyline", ns)) == len(graph.edges)
    labels = [t.text for t in root.iterfind("s:text", ns)]
    assert sorted(labels) == sorted(e.label for e in graph.edges if e.label)
    assert "if event.rating <= 2" in [t for g in groups.values() for t in g.itertext()]


def test_svg_boxes_do_not_overlap():
    from engine.tools.graph import layout

    boxes, _ = layout(build_graph(_journey("complaint-handling")))
    real = [b for b in boxes.values() if b.shape != "dummy"]
    for i, a in enumerate(real):
        for b in real[i + 1 :]:
            apart = (
                a.x + a.w / 2 <= b.x - b.w / 2
                or b.x + b.w / 2 <= a.x - a.w / 2
                or a.y + a.h <= b.y
                or b.y + b.h <= a.y
            )
            assert apart, (a.lines, b.lines)


def test_svg_escapes_text():
    journey = Journey(name="<j>", trigger="t.x", origin=AT,
                      steps=[Set(AT, "var", "x", Expr('"<b> & </b>"', []))])  # fmt: skip
    svg = to_svg(build_graph(journey))
    assert "<title>journey &lt;j&gt;</title>" in svg
    assert "set x = &quot;&lt;b&gt; &amp; &lt;/b&gt;&quot;" in svg
    ET.fromstring(svg)


def test_unknown_journey_suggests_the_closest(capsys):
    code = main(["graph", "welcome", "--rules", RULES, "--templates", TEMPLATES])
    out, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert out == ""
    assert err == "error: unknown journey 'welcome'\nhint: did you mean 'welcome-series'?\n"


def test_unknown_journey_without_a_close_match_lists_them(capsys):
    code = main(["graph", "newsletter", "--rules", RULES, "--templates", TEMPLATES])
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == (
        "error: unknown journey 'newsletter'\n"
        "hint: journeys: abandoned-cart, birthday, cancellation-save, complaint-handling, "
        "order-follow-up, welcome-series, win-back\n"
    )


def _journey(name: str) -> Journey:
    from engine.runtime.plans import compile_content

    return compile_content(RULES, TEMPLATES).plan.journeys[name]
