"""``lifecycle validate``: check rules and templates, report every problem.

In: ``--rules DIR`` and ``--templates DIR`` (defaults rules/ and templates/).
Out: each problem on stdout as ``PATH:LINE:COL: error: MESSAGE``, its source line, a caret
and a hint, sorted by file/line/col; a summary line on stderr; ``ExitCode.OK`` when clean,
``ExitCode.PROBLEMS`` otherwise.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli import ExitCode, add_content_arguments

EXAMPLES = (
    "lifecycle validate",
    "lifecycle validate --rules my-rules/ --templates my-templates/",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_content_arguments(parser)


def run(args: argparse.Namespace) -> ExitCode:
    from engine.runtime.plans import compile_content

    result = compile_content(args.rules, args.templates)
    problems = sorted(result.problems, key=lambda p: p.sort_key())
    for problem in problems:
        print(problem.render(), end="\n\n")
    if problems:
        files = len({p.file for p in problems})
        errors = "error" if len(problems) == 1 else "errors"
        where = "file" if files == 1 else "files"
        print(f"{len(problems)} {errors} in {files} {where}", file=sys.stderr)
        return ExitCode.PROBLEMS
    journeys = len(result.plan.journeys)
    print(
        f"ok: {journeys} journey{'s' if journeys != 1 else ''}, "
        f"{len(result.templates)} template{'s' if len(result.templates) != 1 else ''}",
        file=sys.stderr,
    )
    return ExitCode.OK
