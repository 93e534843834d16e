"""Benchmark: simulated journeys per second on the time-skipping test server.

In: nothing (sign-up events are generated here, shaped like ``samples/events.jsonl``'s
``customer.signed_up``: opted in, no orders).
Out: a table on stdout: N customers through ``rules/onboarding.yaml``'s ``welcome-series``
(welcome -> 2 days -> first-order nudge -> 5 days without an order -> last call -> 1 week
-> no club invite: 3 emails, 14 simulated days each) with

- the engine: ``engine.tools.simulator.simulate()`` over the shipped rules and templates;
- ``hand``: the hand-written baseline (``bench/handwritten.py``): ``WelcomeWorkflow``
  with ``workflow.sleep`` timers, one plain ``start_workflow`` per customer with its
  sign-up event, and ``HandEmail``: the same templates rendered the same way, in process,
  sent by aiosmtplib over one reused connection to the same kind of aiosmtpd sink; same
  sandbox runner and worker settings as the engine's worker; all results awaited with
  time skipping unlocked once (FINDINGS.md: a ``gather`` over many ``handle.result()``
  calls with automatic time skipping hangs);
- variants of the baseline (``--variants``) that add one of the engine's guarantees, to
  show what each costs: ``hand+pool`` renders in the engine's render process pool
  (``engine/delivery/render_pool.py``), ``hand+ledger`` claims and records every send in
  the SQLite sent-ledger;

each on a fresh time-skipping server and SMTP sink (the test server slows as workflows
accumulate), timed from before the server starts to after it shut down, at each of
``--sizes`` customers. Also times ``cli``: ``lifecycle simulate EVENTS.jsonl --json``
in a child process, as a user runs it (interpreter start, imports and output included;
``--no-cli`` skips it). Prints wall seconds per side and the ratios engine / each baseline
and cli / hand (rate over rate), and checks every side sent the same emails.

Run: ``.venv/bin/python bench/bench_simulate.py`` (10, 300 and 1,000 customers, about
5 minutes alone on 2 cores); ``--quick``: 10 and 50 customers, about 1 minute;
``--sizes 10,300 --variants none``. The machine is shared and noisy: compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The sandbox imports the workflow module again for every new workflow instance; without
# bytecode caches (PYTHONDONTWRITEBYTECODE is set on these machines) that is a compile
# from source each time, ~7 % of either side's CPU. A deployed worker has its caches.
sys.dont_write_bytecode = False

from temporalio.testing import WorkflowEnvironment  # noqa: E402

from bench import handwritten  # noqa: E402
from bench.bench_runtime import handwritten_worker, pass_through  # noqa: E402
from bench.hand_workflows import welcome  # noqa: E402
from engine.delivery.ledger import open_ledger  # noqa: E402
from engine.runtime.config import binary_path  # noqa: E402
from engine.runtime.plans import PlanStore  # noqa: E402
from engine.tools.simulator import quiet_runtime, simulate  # noqa: E402
from engine.tools.smtp_sink import SmtpSink  # noqa: E402

RULES = ROOT / "rules"
TEMPLATES = ROOT / "templates"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXPECTED = {"welcome": 1, "first-order-nudge": 1, "first-order-last-call": 1}


def signup(i: int) -> dict:
    cid = f"c-{i}"
    return {
        "id": f"evt-{i}",
        "type": "customer.signed_up",
        "customer_id": cid,
        "customer": {
            "name": f"Customer {i}",
            "email": f"{cid}@example.test",
            "marketing_opt_in": True,
            "orders_count": 0,
            "lifetime_value": 0,
        },
        "data": {"source": "homepage"},
    }


async def run_engine(n: int, store: PlanStore) -> dict:
    events = [(START, signup(i)) for i in range(n)]
    t0 = time.perf_counter()
    result = await simulate(events, RULES, TEMPLATES, START, until=timedelta(days=30), store=store)
    wall = time.perf_counter() - t0
    sends = Counter(a["template"] for a in result.public_actions() if a["action"] == "send")
    ended = sum(1 for a in result.public_actions() if a["action"] == "end")
    return {"wall": wall, "sends": sends, "ended": ended, "emails": len(result.emails)}


async def run_cli(n: int) -> dict:
    """``lifecycle simulate EVENTS.jsonl --json`` in a child process, as a user runs it
    (interpreter start, imports, rules compiled, output written)."""
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        events = work / "events.jsonl"
        events.write_text("".join(json.dumps({**signup(i), "at": "+0s"}) + "\n" for i in range(n)))
        cmd = [sys.executable, "-m", "engine", "simulate", str(events), "--rules", str(RULES)]
        cmd += ["--templates", str(TEMPLATES), "--start", START.isoformat(), "--until", "30d"]
        cmd += ["--json"]
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"lifecycle simulate failed ({proc.returncode}):\n{err.decode()}")
        lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        sends = Counter(a["template"] for a in lines if a["action"] == "send")
        ended = sum(1 for a in lines if a["action"] == "end")
        return {"wall": wall, "sends": sends, "ended": ended, "emails": sum(sends.values())}
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run_hand(n: int, variant: str = "hand") -> dict:
    """``welcome.WelcomeWorkflow`` for ``n`` customers, each started by a plain
    ``start_workflow`` with its sign-up event, all awaited with time skipping unlocked."""
    render, with_ledger = handwritten.VARIANTS[variant]
    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    sink = SmtpSink().start()
    t0 = time.perf_counter()
    try:
        ledger = await open_ledger(None, work / "ledger.sqlite") if with_ledger else None
        email = handwritten.HandEmail(TEMPLATES, "127.0.0.1", sink.port, render, ledger)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binary_path("temporal-test-server"),
            runtime=quiet_runtime(),  # as simulate() does
        )
        try:
            queue = f"bench-sim-{uuid.uuid4().hex[:8]}"
            worker = handwritten_worker(env.client, email, queue, [welcome.WelcomeWorkflow])
            async with worker:
                limit = asyncio.Semaphore(64)

                async def start(i: int):
                    event = signup(i)
                    async with limit:
                        return await env.client.start_workflow(
                            welcome.WelcomeWorkflow.run,
                            event,
                            id=f"hand-{event['customer_id']}",
                            task_queue=queue,
                        )

                handles = await asyncio.gather(*(start(i) for i in range(n)))
                async with env.time_skipping_unlocked():
                    with env.auto_time_skipping_disabled():
                        outcomes = await asyncio.gather(*(h.result() for h in handles))
        finally:
            await env.shutdown()
            await email.close()
        wall = time.perf_counter() - t0
        sends = Counter()
        for message in sink.messages:
            sends[_template_of(message)] += 1
        ended = sum(1 for o in outcomes if o == "completed")
        return {"wall": wall, "sends": sends, "ended": ended, "emails": len(sink.messages)}
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)


def _template_of(captured) -> str:
    """The template an email came from, told by its subject (emails carry no template
    header); enough to count the welcome series' three steps."""
    subject = captured.message.get("Subject", "")
    if subject.startswith("Welcome"):
        return "welcome"
    if subject.startswith("Last call"):
        return "first-order-last-call"
    if "off your first bag" in subject:
        return "first-order-nudge"
    return subject


async def run_capped(coro, timeout: float) -> dict:
    """The engine's run, or a lower bound on its wall time when it exceeds ``timeout``
    (cancelling ``simulate()`` stops its worker, test server and SMTP sink)."""
    t0 = time.perf_counter()
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        return {"wall": time.perf_counter() - t0, "timed_out": True}


def check(name: str, r: dict, n: int) -> str:
    want = Counter({t: c * n for t, c in EXPECTED.items()})
    if r["sends"] != want or r["ended"] != n:
        return f"MISMATCH {name}: sends {dict(r['sends'])}, ended {r['ended']} (want {n})"
    return f"{name}: {r['emails']} emails, {r['ended']} journeys completed, as expected"


async def main_async(args: argparse.Namespace) -> None:
    store = PlanStore(RULES, TEMPLATES)
    sides = args.sides or ["engine", *(["cli"] if args.cli else []), "hand", *args.variants]
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, shared machine:")
    print("# compare the ratios, not the absolute figures, across runs.")
    # Warm-up (imports, template compilation, the render pool's processes) on each side.
    await run_engine(5, store)
    for side in sides:
        if side.startswith("hand"):
            await run_hand(5, side)
    table = []
    for n in args.sizes:
        runs: dict[str, list] = {side: [] for side in sides}
        for r in range(args.repeat):
            for side in sides if r % 2 == 0 else list(reversed(sides)):
                if side == "engine":
                    res = await run_capped(run_engine(n, store), args.timeout)
                elif side == "cli":
                    res = await run_cli(n)
                else:
                    res = await run_hand(n, side)
                runs[side].append(res)
                if res.get("timed_out"):
                    print(f"  {side:12} {n:5} customers: did not finish in {args.timeout:.0f} s")
                    continue
                print(
                    f"  {side:12} {n:5} customers: {res['wall']:7.2f} s  {n / res['wall']:6.1f} j/s"
                )
                problem = check(side, res, n)
                if problem.startswith("MISMATCH"):
                    print("   " + problem)
        table.append((n, runs))
    print("\nwelcome-series: N customers sign up at once, 14 simulated days, 3 emails each;")
    print(f"fresh time-skipping server per run, wall s (median of {args.repeat}) and")
    print("ratio = engine rate / that side's rate (target: engine/hand >= 0.9)")
    pairs = [("engine", h) for h in sides if h.startswith("hand") and "engine" in sides]
    if "cli" in sides and "hand" in sides:
        pairs.append(("cli", "hand"))
    head = "".join(f"{s:>13}" for s in sides)
    names = "".join(f"{a[:3] + '/' + b:>16}" for a, b in pairs)
    print(f"   {'customers':>9}{head}  {names}")
    for n, runs in table:
        walls, capped = {}, {}
        for side in sides:
            walls[side] = statistics.median(r["wall"] for r in runs[side])
            capped[side] = any(r.get("timed_out") for r in runs[side])
        cells = "".join(f"{'>' if capped[s] else '':>7}{walls[s]:6.2f}" for s in sides)
        ratios = "".join(
            f"{'<' if capped[a] else '':>10}{walls[b] / walls[a]:6.2f}" for a, b in pairs
        )
        print(f"   {n:9}{cells}  {ratios}")
    n, runs = table[-1]
    for side in sides:
        if not runs[side][-1].get("timed_out"):
            print("   " + check(side, runs[side][-1], n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 and 50 customers")
    parser.add_argument("--sizes", default=None, help="comma-separated (default 10,300,1000)")
    parser.add_argument(
        "--variants",
        default="hand+pool,hand+ledger",
        help="extra baselines: hand+pool (render-pool hop), hand+ledger (sent-ledger); or none",
    )
    parser.add_argument(
        "--no-cli", dest="cli", action="store_false", help="skip timing `lifecycle simulate`"
    )
    parser.add_argument(
        "--sides", default=None, help="only these, e.g. engine (for a profile of one side)"
    )
    parser.add_argument(
        "--pass-through",
        default="",
        help="experiment: modules the engine's sandbox also passes through, e.g. workflows",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per side (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="cap on one engine run, s (default 300)"
    )
    args = parser.parse_args(argv)
    sizes = args.sizes or ("10,50" if args.quick else "10,300,1000")
    args.sizes = [int(x) for x in sizes.split(",")]
    args.variants = [v for v in args.variants.split(",") if v and v != "none"]
    args.sides = args.sides.split(",") if args.sides else None
    pass_through([m for m in args.pass_through.split(",") if m])
    unknown = [v for v in args.variants if v not in handwritten.VARIANTS or v == "hand"]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from hand+pool, hand+ledger")
    started = time.perf_counter()
    asyncio.run(main_async(args))
    print(f"# took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
