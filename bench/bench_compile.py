"""Compile benchmark: 1,000 generated journeys through ``compile_rules`` and ``validate``.

In: nothing (``--journeys N``, ``--repeat R`` optional). Out: a table of wall times on
stdout. Generates a rules set (10 files, ~10 varied steps per journey, a few templates) in
a temporary folder, then times the compiler alone and a full in-process
``lifecycle validate`` run, without and with a ``schema:`` declaring every field the
journeys read (so every customer.* / trigger.* in rules and templates is checked).
Target: under 2 s for 1,000 journeys, with the schema too.

    .venv/bin/python bench/bench_compile.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsl import parser as dsl_parser  # noqa: E402
from engine.cli import main  # noqa: E402
from engine.runtime.plans import compile_content  # noqa: E402

TEMPLATES = ["welcome", "nudge", "thanks", "reminder", "alert"]

JOURNEY = """\
  journey-{i}:
    description: Generated journey number {i}.
    trigger: customer.signed_up
    when: customer.marketing_opt_in and customer.orders_count < {small}
    goal: order.placed
    reentry: after {days} days
    steps:
      - send welcome with discount={small}, name=upper(customer.first_name)
      - wait {days} days
      - if customer.orders_count == 0 and days_since(customer.signed_up_at) > 2:
          - send nudge with code="C{i}"
        else:
          - send thanks
      - wait for order.placed where event.total > {i} within 36 hours:
          received:
            - set customer.last_total = event.total
            - send thanks with total=event.total * 1.2
          timeout:
            - call create_ticket(priority="low", complaint=trigger.id) as ticket
            - set customer.ticket = ticket.id
            - notify support with alert with ticket=ticket.id
      - set score = len(customer.tags) + {small}
      - if score >= 3 or "vip" in customer.tags:
          - send reminder with score=score
      - wait 2h
      - exit
"""


SCHEMA = """\
schema:
  customer:
    first_name: text
    marketing_opt_in: bool
    orders_count: number
    signed_up_at: datetime
    last_total: number
    tags: list
    ticket: text
  events:
    customer.signed_up: {id: text}
    order.placed: {total: number}
"""


def generate(root: Path, journeys: int, files: int = 10, schema: bool = False) -> tuple[Path, Path]:
    rules, templates = root / "rules", root / "templates"
    rules.mkdir()
    templates.mkdir()
    for name in TEMPLATES:
        (templates / f"{name}.html.j2").write_text(
            "<html><head><title>{% block subject %}Hi {{ customer.first_name }}"
            "{% endblock %}</title></head><body><p>Hello</p></body></html>\n"
        )
    (rules / "settings.yaml").write_text(
        'settings:\n  sender: "Bench <bench@example.test>"\n  teams:\n    support: s@example.test\n'
    )
    if schema:
        (rules / "schema.yaml").write_text(SCHEMA)
    per_file = journeys // files
    for f in range(files):
        body = ["journeys:"]
        for i in range(f * per_file, (f + 1) * per_file):
            body.append(JOURNEY.format(i=i, small=i % 7, days=1 + i % 5))
        (rules / f"part-{f:02}.yaml").write_text("\n".join(body))
    return rules, templates


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        dsl_parser._parse.cache_clear()  # every run starts cold, as a fresh `lifecycle validate` does
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run(journeys: int, repeat: int) -> None:
    rows = []
    for schema in (False, True):
        rows += measure(journeys, repeat, schema)
    print(f"{'what':<34}{'median s':>10}{'min s':>10}{'max s':>10}{'µs/journey':>12}")
    for name, times in rows:
        med = statistics.median(times)
        print(
            f"{name:<34}{med:>10.3f}{min(times):>10.3f}{max(times):>10.3f}"
            f"{med / journeys * 1e6:>12.0f}"
        )


def measure(journeys: int, repeat: int, schema: bool) -> list:
    with tempfile.TemporaryDirectory() as tmp:
        rules, templates = generate(Path(tmp), journeys, schema=schema)
        lines = sum(len(p.read_text().splitlines()) for p in rules.glob("*.yaml"))
        steps_total = 0

        def compile_once():
            nonlocal steps_total
            result = compile_content(rules, templates)
            assert not result.problems, result.problems[0].render()
            assert len(result.plan.journeys) == journeys

        def validate_once():
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                code = main(["validate", "--rules", str(rules), "--templates", str(templates)])
            assert code == 0

        compile_once()  # warm-up: grammar build, activity registry import
        compile_times = timed(compile_once, repeat)
        validate_times = timed(validate_once, repeat)

        if not schema:
            print(f"rules: {journeys:,} journeys, ~10 steps each, {lines:,} YAML lines, "
                  f"{len(TEMPLATES)} templates; {repeat} runs each; target < 2.00 s")  # fmt: skip
        del steps_total
        suffix = " (with schema:)" if schema else ""
        return [
            ("compile_rules" + suffix, compile_times),
            ("lifecycle validate" + suffix, validate_times),
        ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run(args.journeys, args.repeat)
