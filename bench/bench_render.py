"""Benchmark: what the render process pool costs per email (engine/delivery/render_pool.py).

In: the shipped templates (``welcome``, ``first-order-nudge``, ``first-order-last-call``:
the welcome series), a customer context like the simulate bench's.
Out: ms per render for

- **inline**: ``render_email`` in this process, on one environment (what the hand-written
  baseline does);
- **pool**: ``RenderPool.render_async`` (the engine's way since issue 7: pickle the
  variables, pebble schedules the job, a render process renders under its time and
  memory limits, the result comes back through a pipe), one render at a time (latency)
  and ``--concurrency`` at a time (throughput, as activities overlap in a worker);
- and the ``build_message`` + ``as_bytes`` step that follows either.

Run: ``.venv/bin/python bench/bench_render.py`` (~10 s; ``--quick`` ~3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.delivery.message import build_message, render_email  # noqa: E402
from engine.delivery.render_pool import RenderLimits, RenderPool  # noqa: E402
from engine.delivery.templates import TemplateSet, make_environment  # noqa: E402

TEMPLATES = ROOT / "templates"
NAMES = ["welcome", "first-order-nudge", "first-order-last-call"]


def variables(i: int) -> dict:
    cid = f"c-{i}"
    return {
        "customer": {"name": f"Customer {i}", "email": f"{cid}@example.test", "orders_count": 0},
        "trigger": {"source": "homepage"},
        "discount": 10,
        "unsubscribe_url": f"https://acme.test/unsubscribe/{cid}",
    }


def best_ms(samples: list[float], n: int) -> float:
    return min(samples) / n * 1000


async def main_async(args: argparse.Namespace) -> None:
    templates = TemplateSet.read(TEMPLATES)
    env = make_environment(templates)
    pool = RenderPool(RenderLimits(processes=args.processes))
    n = args.renders
    try:
        for name in NAMES:  # warm-up: compile every template on both sides
            render_email(env, name, variables(0))
            for _ in range(args.processes * 2):
                await pool.render_async(templates, name, variables(0))
        inline, pooled, parallel, message = [], [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for i in range(n):
                render_email(env, NAMES[i % 3], variables(i))
            inline.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for i in range(n):
                await pool.render_async(templates, NAMES[i % 3], variables(i))
            pooled.append(time.perf_counter() - t0)
            limit = asyncio.Semaphore(args.concurrency)

            async def one(i: int, limit: asyncio.Semaphore = limit) -> None:
                async with limit:
                    await pool.render_async(templates, NAMES[i % 3], variables(i))

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            parallel.append(time.perf_counter() - t0)
            rendered = render_email(env, "welcome", variables(1))
            t0 = time.perf_counter()
            for i in range(n):
                build_message(
                    rendered,
                    sender="Acme Shop <hello@acme.test>",
                    to=f"c-{i}@example.test",
                    idempotency_key=f"c-{i}/welcome-series/0",
                    journey="welcome-series",
                    customer_id=f"c-{i}",
                    unsubscribe_url=f"https://acme.test/unsubscribe/c-{i}",
                    sent_at="2026-03-02T09:00:00Z",
                ).as_bytes()
            message.append(time.perf_counter() - t0)
    finally:
        pool.close()
    a, b, c = best_ms(inline, n), best_ms(pooled, n), best_ms(parallel, n)
    print(f"welcome-series templates, {n} renders, best of {args.repeat}, ms per email")
    print(f"   inline render_email           {a:7.3f}")
    print(f"   pool, one at a time           {b:7.3f}   (hop: +{b - a:.3f} ms, x{b / a:.1f})")
    print(
        f"   pool, {args.concurrency} in flight, {args.processes} processes"
        f"{c:8.3f}   (x{c / a:.1f} of inline)"
    )
    print(f"   build_message + as_bytes      {best_ms(message, n):7.3f}")
    print(f"   (median pool one at a time {statistics.median(pooled) / n * 1000:.3f} ms)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 renders, 2 repeats")
    parser.add_argument("--renders", type=int, default=None, help="default 600")
    parser.add_argument("--repeat", type=int, default=None, help="default 3")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="render processes (2)")
    args = parser.parse_args(argv)
    args.renders = args.renders or (100 if args.quick else 600)
    args.repeat = args.repeat or (2 if args.quick else 3)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
