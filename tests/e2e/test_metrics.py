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
        m = re.match(rf"^{name}(?:_total)?\{{(.*)\}} ([0-9.e+]+)$", line)
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
    # The SDK's own metrics come through the same endpoint.
    assert re.search(r"^temporal_\w+", text, re.M), text[:2000]
