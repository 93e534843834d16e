"""Benchmark: what measurement costs (issue 12, "Performance").

In: nothing (the bench starts a headless ``temporal server start-dev`` on free loopback
ports, in memory, an in-process SMTP sink and a SQLite ledger in a temporary folder).
Out: two tables on stdout, measured in the same run:

a. journeys end to end (``bench_runtime.run_journeys``: send, 1 s timer, wait for an
   event, send; two events per customer by signal-with-start) with the durable record
   (``engine.runtime.record``, SQLite) and Prometheus metrics (``LIFECYCLE_METRICS_PORT``,
   the SDK's runtime telemetry, scraped once at the end) **on**, against the same run
   with both **off** (``Settings(record=False)``, a client without a metrics runtime).
   Sides alternate (on off off on ...); median journeys/s; ratio on / off (target >= 0.9).
b. ``lifecycle report --live`` over N recorded journeys (default 100,000; each a start,
   a split, two sends and an end: 5 rows), written straight into a SQLite record:
   seconds to read them (aggregated by the database: per instance, per split, message
   counts), to turn that into journal lines and to build the report,
   and the whole command as an operator runs it (a child process); against the
   strongest straightforward baseline, one SQL ``GROUP BY`` that counts rows by journey,
   action and status (no conversion join, no experiments) (target: the command < 2 s).

Run: ``.venv/bin/python bench/bench_measure.py`` (about 3 minutes; ``--quick`` about
1 minute). The machine is shared and noisy: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.dont_write_bytecode = False  # as bench_runtime: the sandbox re-imports modules

from bench.bench_runtime import SinkWatcher, bench_store, dev_server, run_journeys  # noqa: E402
from dsl.contract import RecordInput  # noqa: E402
from engine.delivery.email_activity import EmailActivities  # noqa: E402
from engine.delivery.ledger import open_ledger  # noqa: E402
from engine.delivery.smtp import SmtpSettings  # noqa: E402
from engine.runtime.client import connect  # noqa: E402
from engine.runtime.record import lines_of, rows_of  # noqa: E402
from engine.runtime.settings import Settings  # noqa: E402
from engine.runtime.worker import metrics_runtime  # noqa: E402
from engine.tools.report import build_report  # noqa: E402
from engine.tools.smtp_sink import SmtpSink, free_port  # noqa: E402

TEMPLATES = ROOT / "templates"


# ---------------------------------------------------------------------- a. journeys


async def part_a(args, work: Path) -> None:
    server = dev_server(work, sqlite=False)
    sink = SmtpSink().start()
    ledger = await open_ledger(None, work / "ledger.sqlite")
    try:
        smtp = SmtpSettings(host="127.0.0.1", port=sink.port)
        email = EmailActivities(TEMPLATES, smtp, ledger)
        metrics_port = free_port()
        metered = "metrics" in args.on
        clients = {
            "on": await connect(
                server.address, runtime=metrics_runtime(metrics_port) if metered else None
            ),
            "off": await connect(server.address),
        }
        settings = {"on": Settings(record="record" in args.on), "off": Settings(record=False)}
        ctx = {"store": bench_store(), "email": email, "watcher": SinkWatcher(sink).start()}
        for side in ("on", "off"):  # warm-up: imports, sandbox, both clients
            await run_journeys(clients[side], "engine", 10, {**ctx, "settings": settings[side]})
        runs: dict[str, list[float]] = {"on": [], "off": []}
        for r in range(args.repeat):
            for side in ("on", "off") if r % 2 == 0 else ("off", "on"):
                res = await run_journeys(
                    clients[side], "engine", args.customers, {**ctx, "settings": settings[side]}
                )
                runs[side].append(res["journeys_s"])
                print(f"  journeys record+metrics {side:3} {args.customers} {res['wall']:6.2f} s"
                      f"  {res['journeys_s']:6.1f} j/s", flush=True)  # fmt: skip
        rows = (
            sqlite3.connect(work / "ledger.sqlite")
            .execute("SELECT count(*) FROM sent_ledger_record")
            .fetchone()[0]
        )
        scraped = ""
        if metered:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as answer:
                scraped = answer.read().decode()
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scraped.splitlines()
            if line.startswith("lifecycle_journeys_started{")
        )
        on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
        print(f"\na. journeys end to end, {args.customers} customers, median of {args.repeat}")
        print(f"   {' + '.join(args.on)} on : {on:6.1f} journeys/s")
        print(f"   {' + '.join(args.on)} off: {off:6.1f} journeys/s")
        print(f"   ratio on / off      : {on / off:6.2f}  (target >= 0.9)")
        print(f"   (the on side recorded {rows} rows; its worker counted {counted:.0f} starts)")
    finally:
        await ledger.close()
        sink.stop()
        server.stop()


# ---------------------------------------------------------------------- b. report


def write_record(path: Path, journeys: int) -> None:
    """``journeys`` customers in one journey with a split and a holdout-free conversion
    rate of ~10 % / ~12 % by variant, as the record activity writes them."""

    async def go():
        ledger = await open_ledger(None, path)
        at = "2026-11-01T00:00:00Z"
        batch: list[tuple] = []
        for i in range(journeys):
            variant = "plain" if i % 2 else "playful"
            converted = i % (10 if variant == "plain" else 8) == 0
            inst = "welcome:1"
            lines = [
                {"seq": 1, "at": at, "journey": "welcome", "instance": inst, "action": "start"},
                {"seq": 2, "at": at, "journey": "welcome", "instance": inst, "action": "split",
                 "experiment": "subject", "variant": variant, "variants": ["plain", "playful"]},
                {"seq": 3, "at": at, "journey": "welcome", "instance": inst, "action": "send",
                 "template": f"welcome-{variant}", "status": "sent"},
                {"seq": 4, "at": at, "journey": "welcome", "instance": inst, "action": "send",
                 "template": "nudge", "status": "suppressed" if i % 7 == 0 else "sent",
                 "reason": "capped" if i % 7 == 0 else ""},
                {"seq": 5, "at": at, "journey": "welcome", "instance": inst, "action": "end",
                 "reason": "goal" if converted else "completed", "converted": converted},
            ]  # fmt: skip
            batch += rows_of(RecordInput(f"c{i}", "e0", lines))
            if len(batch) >= 50_000:
                await ledger.append_journal(batch)
                batch = []
        if batch:
            await ledger.append_journal(batch)
        await ledger.close()

    asyncio.run(go())


def part_b(args, work: Path) -> None:
    path = work / "report" / "ledger.sqlite"
    t = time.perf_counter()
    write_record(path, args.journeys)
    print(f"  wrote {args.journeys} journeys ({5 * args.journeys} rows) in"
          f" {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip

    def in_process() -> dict:
        out = {}

        async def read():
            ledger = await open_ledger(None, path, timeout=120)
            try:
                return await ledger.read_journal()
            finally:
                await ledger.close()

        t0 = time.perf_counter()
        read_rows = asyncio.run(read())
        t1 = time.perf_counter()
        lines = lines_of(read_rows)
        t2 = time.perf_counter()
        report = build_report(lines)
        t3 = time.perf_counter()
        assert report["journeys"][0]["entered"] == args.journeys
        out.update(read=t1 - t0, lines=t2 - t1, report=t3 - t2, total=t3 - t0)
        return out

    def command() -> float:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "DATABASE_"))}
        env["LIFECYCLE_DATA"] = str(path.parent)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "engine", "report", "--live", "--json"],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - t0

    def group_by() -> float:
        t0 = time.perf_counter()
        with sqlite3.connect(path) as conn:
            conn.execute(
                "SELECT journey, action, status, count(*) FROM sent_ledger_record"
                " GROUP BY journey, action, status"
            ).fetchall()
        return time.perf_counter() - t0

    runs = [in_process() for _ in range(args.repeat)]
    commands = [command() for _ in range(args.repeat)]
    groups = [group_by() for _ in range(args.repeat)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    cmd, base = statistics.median(commands), statistics.median(groups)
    print(f"\nb. report over {args.journeys} recorded journeys, median of {args.repeat}")
    print(f"   read rows {med('read'):.2f} s, journal lines {med('lines'):.2f} s,"
          f" build_report {med('report'):.2f} s: {med('total'):.2f} s in process")  # fmt: skip
    print(f"   `lifecycle report --live --json` (a child process): {cmd:.2f} s  (target < 2 s)")
    print(f"   baseline, one SQL GROUP BY (counts only): {base:.2f} s;"
          f" report in process / GROUP BY: {med('total') / base:.1f}x")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 1 minute)")
    parser.add_argument("--only", choices=["journeys", "report"])
    parser.add_argument("--customers", type=int, default=None, help="part a (100)")
    parser.add_argument("--journeys", type=int, default=None, help="part b (100000)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per side (3)")
    parser.add_argument(
        "--on",
        default="record,metrics",
        help="part a: what the 'on' side has, of record,metrics (default both)",
    )
    args = parser.parse_args(argv)
    args.on = [part for part in args.on.split(",") if part in ("record", "metrics")]
    if args.quick:
        args.customers = args.customers or 30
        args.journeys = args.journeys or 20_000
        args.repeat = args.repeat or 2
    args.customers = args.customers or 100
    args.journeys = args.journeys or 100_000
    args.repeat = args.repeat or 3
    work = Path(tempfile.mkdtemp(prefix="bench-measure-"))
    print(f"# {os.cpu_count()} CPUs, shared machine: compare the ratios of one run")
    if args.only in (None, "journeys"):
        asyncio.run(part_a(args, work))
    if args.only in (None, "report"):
        part_b(args, work)


if __name__ == "__main__":
    main()
