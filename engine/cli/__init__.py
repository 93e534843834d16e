"""The ``lifecycle`` command line.

In: argv. Out: an ``ExitCode``. Each subcommand lives in ``engine.cli.<name>`` with
``add_arguments(parser)``, ``run(args) -> ExitCode`` and optionally ``EXAMPLES`` (command
lines its ``--help`` shows); modules are imported lazily so ``lifecycle validate`` does
not pay for Temporal's import. ``lifecycle`` alone prints the overview with examples
(exit 0). Output into a pipe that closes early (``lifecycle preview welcome | head``)
ends quietly, with the command's own exit code.
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


def add_content_arguments(parser, rules: bool = True) -> None:
    """``--rules`` and ``--templates``, defaulting to what the worker reads
    (``LIFECYCLE_RULES`` / ``LIFECYCLE_TEMPLATES``, else ``rules/`` and ``templates/``)."""
    from engine.runtime.settings import setting

    if rules:
        parser.add_argument(
            "--rules",
            default=setting("rules_dir"),
            help="rules folder (default: LIFECYCLE_RULES, else rules/)",
        )
    parser.add_argument(
        "--templates",
        default=setting("templates_dir"),
        help="templates folder (default: LIFECYCLE_TEMPLATES, else templates/)",
    )


COMMANDS: dict[str, str] = {
    "validate": "check rules and templates; report every problem",
    "journeys": "list the journeys and what starts each",
    "show": "print a journey's compiled plan (no name: list the journeys)",
    "send-event": "send an event (JSON) to a running deployment",
    "status": "show a customer's profile and active journeys",
    "why": "say why a customer's journeys started or not, and each message went out or not",
    "simulate": "run events through the real workflows on simulated time",
    "report": "simulate events and report conversions, holdouts and experiments",
    "preview": "render a template with a sample customer",
    "graph": "draw a journey (Mermaid flowchart or SVG; no name: list the journeys)",
    "serve": "run the HTTP API (events, Segment, customers, unsubscribe links)",
}

DESCRIPTION = "lifecycle: customer-lifecycle journeys (rules in rules/, emails in templates/)."

EXAMPLES = """\
examples:
  ./run                                  start everything locally (worker, Temporal, SMTP sink)
  lifecycle validate                     check rules/ and templates/, every problem at once
  lifecycle journeys                     the journeys and the events that start them
  lifecycle show welcome-series          one journey's steps, with their rule lines
  lifecycle preview welcome              render an email with samples/customer.json
  lifecycle simulate samples/events.jsonl --until 30d
                                         run events through the real workflows, on fake time
  lifecycle report samples/events.jsonl  conversion rates, holdouts and experiments (lift, 95% CI)
  lifecycle send-event '{"type": "customer.signed_up", "customer_id": "c-1",
                         "customer": {"email": "ann@example.test"}}'
                                         send an event to the running worker
  lifecycle status c-1                   a customer's profile and journeys
  lifecycle why c-1 --journey winback    why each journey started or not, each email went or not
  lifecycle serve --port 8080            the HTTP API (docs/api.md)

lifecycle COMMAND --help says more about each; docs/operations.md covers settings.
"""


def _examples(module) -> str | None:
    lines = getattr(module, "EXAMPLES", ())
    return ("examples:\n" + "\n".join(f"  {line}" for line in lines)) if lines else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifecycle",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"engine.cli.{name.replace('-', '_')}")
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_examples(module),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        # `lifecycle` alone: the overview is what was asked for, so stdout and exit 0.
        parser.print_help(sys.stdout)
        return ExitCode.OK
    return int(args._module.run(args))


class _PipeSafe:
    """stdout that, once its reader has gone (``| head``), drops what is still written
    instead of raising ``BrokenPipeError``: the command finishes and keeps its exit code.
    The descriptor is pointed at /dev/null so the interpreter's last flush cannot fail."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.broken = False

    def _gone(self) -> None:
        self.broken = True
        import os

        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def entry() -> None:
    """Console-script entry point (``lifecycle``, ``python -m engine``).

    Exits without interpreter finalization once Temporal's client has been loaded: its
    Rust core keeps threads that can abort the process (SIGABRT, "Python runtime state:
    finalizing") while Python tears down, turning a successful command into a crash.
    """
    import os

    sys.stdout = _PipeSafe(sys.stdout)
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
