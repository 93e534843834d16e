"""The ``lifecycle`` command line.

In: argv. Out: an ``ExitCode``. Each subcommand lives in ``engine.cli.<name>`` with
``add_arguments(parser)`` and ``run(args) -> ExitCode``; modules are imported lazily so
``lifecycle validate`` does not pay for Temporal's import.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PROBLEMS = 1  # the input has errors (validate found problems, unknown journey, ...)
    USAGE = 2  # bad command line (argparse uses 2 as well)
    FAILURE = 3  # the engine could not do its job (server unreachable, ...)


COMMANDS: dict[str, str] = {
    "validate": "check rules and templates; report every problem",
    "show": "print a journey's compiled plan",
    "send-event": "send an event (JSON) to a running deployment",
    "status": "show a customer's profile and active journeys",
    "simulate": "run events through the real workflows on simulated time",
    "preview": "render a template with a sample customer",
    "graph": "draw a journey (Mermaid flowchart or SVG)",
    "serve": "run the HTTP API (events, Segment, customers, unsubscribe links)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lifecycle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"engine.cli.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    return int(args._module.run(args))


def entry() -> None:
    """Console-script entry point (``lifecycle``, ``python -m engine``).

    Exits without interpreter finalization once Temporal's client has been loaded: its
    Rust core keeps threads that can abort the process (SIGABRT, "Python runtime state:
    finalizing") while Python tears down, turning a successful command into a crash.
    """
    import os

    code = main()
    if "engine.delivery.render_pool" in sys.modules:  # stop render processes (atexit may not run)
        sys.modules["engine.delivery.render_pool"].close_shared()
    if "temporalio.bridge" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
