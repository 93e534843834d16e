"""Prometheus metrics from a running worker (LIFECYCLE_METRICS_PORT), scraped over HTTP:
the engine's own counters (from workflows and activities, through Temporal's metric
meter) beside the Temporal SDK's metrics, on the real dev server."""

from __future__ import annotations

import re
import urllib.request
import uuid

from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import connect, send_event
from engine.runtime.worker import metrics_runtime
from engine.tools.smtp_sink import free_port
from tests.e2e.conftest import TEMPLATES, event, new_customer, wait_end, wait_until


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} ([0-9.e+]+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            total += float(m.group(2))
    return total


async def test_the_worker_serves_engine_and_sdk_metrics(temporal_server, store, sink, tmp_path):
    port = free_port()
    client = await connect(temporal_server.address, runtime=metrics_runtime(port))
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port, starttls="false", timeout=5)
    cid = new_customer()
    async with assemble(
        client, store, smtp, tmp_path / "ledger.sqlite", queue, templates_dir=TEMPLATES
    ):
        ev = event("test.hello", cid, {"email": f"{cid}@x.test", "name": "Ann"})
        await send_event(client, ev, task_queue=queue)
        await wait_end(client, cid, "hello-followup", timeout=60)

        def counted():
            text = scrape(port)
            return (
                text
                if value(text, "lifecycle_journeys_ended", journey="hello-followup") >= 1
                else None
            )

        text = await wait_until(counted, 30, "the metrics to be exported")
    assert value(text, "lifecycle_journeys_started", journey="hello-followup") >= 1
    assert (
        value(text, "lifecycle_journeys_ended", journey="hello-followup", reason="completed") >= 1
    )
    assert (
        value(
            text,
            "lifecycle_messages",
            journey="hello-followup",
            template="hello",
            status="sent",
            kind="send",
        )
        >= 1
    )
    assert 'class="marketing"' in text
    assert re.search(r"^lifecycle_messages\{", text, re.M)  # the names the dashboard uses
    # The SDK's own metrics come through the same endpoint.
    assert re.search(r"^temporal_\w+", text, re.M), text[:2000]


def test_the_sample_grafana_dashboard_uses_only_metrics_the_engine_exports():
    import json
    from pathlib import Path

    from engine.api.metrics import ApiMetrics

    dashboard = json.loads(
        (Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = {n for e in exprs for n in re.findall(r"\b(lifecycle_\w+|temporal_\w+)", e)}
    api = ApiMetrics().render().decode()
    # As the SDK's Prometheus exporter names them (no _total suffix; checked by the test
    # above, which scrapes a running worker).
    engine = {"lifecycle_messages", "lifecycle_journeys_started",
              "lifecycle_journeys_ended", "lifecycle_conversions"}  # fmt: skip
    for name in names:
        if name.startswith("lifecycle_api_"):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert f"# TYPE {base}" in api, name
        elif name.startswith("lifecycle_"):
            assert name in engine, name
        else:
            assert name.startswith("temporal_workflow_task_schedule_to_start_latency"), name


async def test_report_live_counts_what_the_workers_recorded(temporal_server, store, sink, tmp_path):
    """The durable record written by a worker on the dev server, read back by
    ``lifecycle report --live`` as an operator runs it (LIFECYCLE_DATA is the worker's)."""
    import asyncio
    import json
    import subprocess

    from tests.e2e.conftest import BIN, REPO, clean_env

    client = await connect(temporal_server.address)
    queue = f"record-{uuid.uuid4().hex[:8]}"
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port, starttls="false", timeout=5)
    customers = [new_customer("rec") for _ in range(3)]
    async with assemble(
        client, store, smtp, tmp_path / "ledger.sqlite", queue, templates_dir=TEMPLATES
    ):
        for cid in customers:
            ev = event("test.hello", cid, {"email": f"{cid}@x.test", "name": "Ann"})
            await send_event(client, ev, task_queue=queue)
        for cid in customers:
            await wait_end(client, cid, "hello-followup", timeout=60)

        def report(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(BIN / "lifecycle"), "report", "--live", *args],
                cwd=REPO,
                env=clean_env(LIFECYCLE_DATA=str(tmp_path)),
                capture_output=True,
                text=True,
                timeout=60,
            )

        async def recorded():  # the last end's record rides its workflow task: poll briefly
            done = await asyncio.to_thread(report, "--journey", "hello-followup", "--json")
            assert done.returncode == 0, done.stderr
            found = json.loads(done.stdout)["journeys"]
            return found if found and found[0]["entered"] >= len(customers) else None

        journeys = await wait_until(recorded, 30, "the record of three journeys")
    # Other tests' customers on this dev server use their own ledgers: exactly these three.
    assert [j["journey"] for j in journeys] == ["hello-followup"]
    assert journeys[0]["entered"] == len(customers)
    assert {(m["template"], m["status"], m["count"]) for m in journeys[0]["messages"]} == {
        ("hello", "sent", len(customers)),
        ("followup", "sent", len(customers)),
    }
    text = report("--since", "1h")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("live: ") and "hello-followup" in text.stdout
    empty = subprocess.run(
        [str(BIN / "lifecycle"), "report", "--live"],
        cwd=REPO,
        env=clean_env(LIFECYCLE_DATA=str(tmp_path / "nothing")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 3  # the engine could not do its job (ExitCode.FAILURE)
    assert "no record at" in empty.stderr and "./run" in empty.stderr
