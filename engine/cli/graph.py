"""``lifecycle graph JOURNEY``: draw a compiled journey.

In: a journey name, ``--rules``/``--templates`` folders, ``--format mermaid|svg`` and
``--out FILE``.
Out: Mermaid flowchart text (default) or an SVG document, on stdout or written to
``--out``, and ``ExitCode.OK``; compile problems or an unknown journey (with a
did-you-mean hint) on stderr and ``ExitCode.PROBLEMS``. Without a journey name: the list of
journeys (``engine.cli.journeys.list_journeys``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import ExitCode, add_content_arguments
from engine.cli.journeys import list_journeys, unknown_journey

EXAMPLES = (
    "lifecycle graph welcome-series",
    "lifecycle graph welcome-series --format svg --out var/welcome.svg",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "journey", nargs="?", help="journey name (leave it out to list the journeys)"
    )
    add_content_arguments(parser)
    parser.add_argument(
        "--format",
        choices=("mermaid", "svg"),
        default="mermaid",
        help="mermaid flowchart text (default) or a standalone SVG picture",
    )
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> ExitCode:
    from engine.runtime.plans import compile_content
    from engine.tools.graph import build_graph, to_mermaid, to_svg

    result = compile_content(args.rules, args.templates)
    if args.journey is None:
        return list_journeys(result, "graph")
    journey = result.plan.journeys.get(args.journey)
    if journey is None:
        problems = sorted(result.problems, key=lambda p: p.sort_key())
        return unknown_journey(result, args.journey, problems)
    graph = build_graph(journey)
    text = to_svg(graph) if args.format == "svg" else to_mermaid(graph)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if result.problems:
        print(
            f"warning: the rules have {len(result.problems)} problem(s); run validate",
            file=sys.stderr,
        )
    return ExitCode.OK
