"""Benchmark: what the contact policy costs a send-heavy journey.

In: nothing (N customers are generated). Out: a table on stdout: wall seconds of
``simulate()`` for N customers through one journey of 10 sends an hour apart, with every
policy enabled (``timezone``, ``quiet_hours`` that no send falls into, a
``frequency_cap`` high enough never to hold one, ``consent``; the journey marketing, so
each send is decided by ``workflows.policy``, takes its turn and is counted) against the
same journey with no policy settings at all, and the ratio (rate with policy / rate
without; target >= 0.95). Each side runs ``--repeats`` times, alternating, on its own
fresh time-skipping server; the best of each is compared. Both sides must send the same
number of emails.

Run: ``.venv/bin/python bench/bench_policy.py`` (100 customers, 3 repeats, ~2 minutes on
2 cores); ``--customers 20 --repeats 1`` for a quick look. The machine is shared and
noisy: compare the ratio of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

STEPS = "\n".join("      - send note\n      - wait 1 hour" for _ in range(10))
RULES = """
settings:
  sender: "Acme <hello@acme.test>"
{settings}
journeys:
  heavy:
    trigger: customer.signed_up
    steps:
{steps}
"""
POLICY = """  timezone: "Europe/Berlin"
  quiet_hours: "23:30-23:45"
  frequency_cap: "100 per 1 day"
  consent: customer.marketing_opt_in"""
START = datetime(2030, 1, 1, 1, 0, tzinfo=UTC)  # 02:00 in Berlin: sends until 12:00


def _folders(settings: str) -> tuple[Path, Path]:
    root = Path(tempfile.mkdtemp(prefix="bench-policy-"))
    (root / "rules").mkdir()
    (root / "rules" / "r.yaml").write_text(RULES.format(settings=settings, steps=STEPS))
    (root / "templates").mkdir()
    (root / "templates" / "note.html.j2").write_text(
        "<html><head><title>{% block subject %}Note for {{ customer.name }}{% endblock %}"
        "</title></head><body><p>Hello {{ customer.name }}</p></body></html>\n"
    )
    return root / "rules", root / "templates"


def _events(n: int) -> list:
    return [
        (
            START,
            {
                "type": "customer.signed_up",
                "customer_id": f"c-{i}",
                "customer": {
                    "name": f"C{i}",
                    "email": f"c{i}@example.test",
                    "marketing_opt_in": True,
                },
                "data": {},
            },
        )
        for i in range(n)
    ]


async def _once(settings: str, n: int) -> tuple[float, int]:
    from engine.tools.simulator import simulate

    rules, templates = _folders(settings)
    began = time.perf_counter()
    result = await simulate(_events(n), rules, templates, START, timedelta(days=1))
    took = time.perf_counter() - began
    sent = sum(1 for a in result.public_actions() if a["action"] == "send" and "status" not in a)
    return took, sent


async def main(customers: int, repeats: int) -> None:
    best = {"none": float("inf"), "policy": float("inf")}
    sent = {}
    for _ in range(repeats):
        for side, settings in (("none", ""), ("policy", POLICY)):
            took, count = await _once(settings, customers)
            best[side] = min(best[side], took)
            sent.setdefault(side, count)
            assert sent[side] == count
    assert sent["none"] == sent["policy"] == customers * 10, sent
    ratio = best["none"] / best["policy"]
    print(f"{customers} customers x 10 sends, best of {repeats}")
    print(f"  no policy     {best['none']:7.2f} s")
    print(f"  every policy  {best['policy']:7.2f} s")
    print(f"  ratio (rate with / without): {ratio:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.repeats))
