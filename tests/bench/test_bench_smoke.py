"""Smoke runs of the benchmarks on tiny sizes: each script starts, runs both sides (the
engine and the hand-written baseline), checks their emails and prints its ratio line.
No timing is asserted: figures on tiny sizes mean nothing (bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_simulate_bench_runs_engine_and_baseline_with_the_same_emails():
    out = run_bench("bench_simulate.py", "--sizes", "2", "--no-cli", "--variants", "none")
    assert "engine: 6 emails, 2 journeys completed, as expected" in out
    assert "hand: 6 emails, 2 journeys completed, as expected" in out
    assert "eng/hand" in out


def test_runtime_bench_events_part_prints_its_ratio():
    out = run_bench(
        "bench_runtime.py", "--only", "events", "--event-customers", "3", "--events-each", "1"
    )
    assert "ratio engine/hand-written, processed:" in out


def test_render_bench_compares_inline_and_pool():
    out = run_bench("bench_render.py", "--renders", "6", "--repeat", "1")
    assert "inline render_email" in out
    assert "pool, one at a time" in out


def test_api_bench_compares_the_api_with_direct_signal_with_start():
    out = run_bench("bench_api.py", "--events", "60")
    assert "ratio api batch of 100/direct:" in out
    assert "ratio api single/direct:" in out


def test_policy_bench_runs_both_sides_with_the_same_emails():
    out = run_bench("bench_policy.py", "--customers", "2", "--repeats", "1")
    assert "2 customers x 10 sends, best of 1" in out
    assert "ratio (rate with / without):" in out


def test_triggers_bench_runs_both_sides():
    out = run_bench("bench_triggers.py", "--customers", "3")
    assert "triggers - none:" in out


def test_measure_bench_runs_both_sides_and_the_report():
    out = run_bench("bench_measure.py", "--customers", "3", "--journeys", "500", "--repeat", "1")
    assert "ratio on / off" in out
    assert "(the on side recorded" in out and "recorded 0 rows" not in out
    assert "`lifecycle report --live --json` (a child process)" in out
