"""The experiments sample (samples/experiments): a subject-line test with a holdout over
300 customers, reported as `lifecycle report` does (docs/rules.md quotes this report)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.tools.report import build_report, format_report
from engine.tools.simulator import read_events, simulate

SAMPLE = Path(__file__).parents[2] / "samples" / "experiments"
START = datetime(2030, 1, 1, tzinfo=UTC)


async def test_the_experiments_sample_report():
    events = read_events(SAMPLE / "events.jsonl", START)
    result = await simulate(
        events, SAMPLE / "rules", SAMPLE / "templates", START, timedelta(days=30)
    )
    report = build_report(result.actions)
    (journey,) = report["journeys"]
    assert (journey["entered"], journey["holdout"], journey["converted"]) == (300, 34, 38)
    (experiment,) = report["experiments"]
    rows = [(v["variant"], v["entered"], v["converted"]) for v in experiment["variants"]]
    assert rows == [("control", 136, 6), ("playful", 130, 32)]
    assert experiment["winner"] == "playful"
    text = format_report(report)
    assert "  playful      130         32  24.6%     +20.2  +12.0 to +28.6  457.9%" in text
    assert len(result.emails) == 136 + 130  # the holdout was sent nothing
