"""Assembling a worker: the customer workflow, the email activity, the plan lookup and the
custom activities (on their own task queue), and ``python worker.py``'s main.

In: a Temporal client, a ``PlanStore``, the email activities, ``Settings``.
Out: ``build_worker`` (an ``EngineWorker``; ``engine.runtime.assembly.assemble`` builds
one with its ledger and email activities) and ``run_worker`` (the worker process on
embedded defaults unless TEMPORAL_ADDRESS / SMTP_HOST are set).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from dsl.contract import LOOKUP, LookupInput, LookupResult, calls_task_queue
from engine.runtime.client import connect
from engine.runtime.config import TASK_QUEUE
from engine.runtime.plans import PlanStore
from engine.runtime.record import RecordActivities
from engine.runtime.registry import temporal_activities
from engine.runtime.servers import EmbeddedTemporal, port_open
from engine.runtime.settings import Settings, command_environment
from workflows.customer import CustomerWorkflow

log = logging.getLogger("lifecycle")


class LookupActivities:
    """The ``lookup_journeys`` local activity: the plan store's answer to a customer.

    One answer shape (``LookupResult``) for every request; the shapes answered before it
    (a bare list; an object without ``settings``) live on only in recorded histories, and
    the workflow decodes those itself (``dsl.contract.lookup_result_of``)."""

    def __init__(self, store: PlanStore, record: bool = False) -> None:
        self.store = store
        self.record = record  # this worker keeps the durable record (settings.record)

    @activity.defn(name=LOOKUP)
    def lookup_journeys(self, inp: LookupInput) -> LookupResult:
        answer = self.store.answer(inp)
        if self.record and answer.settings is not None:
            answer.settings = dataclasses.replace(answer.settings, record=True)
        return answer


def workflow_runner() -> SandboxedWorkflowRunner:
    # dsl.* is deterministic, standard-library-only code: sharing it across workflow runs
    # keeps the evaluator's compiled-expression cache warm instead of re-importing it.
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("dsl")
    )


class EngineWorker:
    """The workers of one deployment, started and stopped together (``async with``):
    the main one (customer workflows, email, plan lookup) and, when rules can ``call``
    anything, the one for custom activities on their own task queue."""

    def __init__(self, workers: Sequence[Worker]) -> None:
        self.workers = list(workers)

    async def __aenter__(self) -> EngineWorker:
        started: list[Worker] = []
        try:
            for worker in self.workers:
                await worker.__aenter__()
                started.append(worker)
        except BaseException as err:
            for worker in reversed(started):
                await worker.__aexit__(type(err), err, err.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        for worker in reversed(self.workers):
            await worker.__aexit__(*exc)

    async def run(self) -> None:
        await asyncio.gather(*(worker.run() for worker in self.workers))


def build_worker(
    client: Client,
    store: PlanStore,
    email_activities,
    task_queue: str = TASK_QUEUE,
    extra_activities: Sequence = (),
    settings: Settings | None = None,
) -> EngineWorker:
    settings = settings if settings is not None else Settings.from_env()
    custom = temporal_activities(store.registry)
    ledger = getattr(email_activities, "ledger", None)
    activities = [
        email_activities.send_email,
        LookupActivities(store, record=settings.record and ledger is not None).lookup_journeys,
        # Also here for calls scheduled on the main queue by journeys that started
        # before calls got their own queue (workflow patch "call-limits-v1").
        *custom,
        *extra_activities,
    ]
    if ledger is not None:
        # Registered even with the record off, for lines a customer still holds from
        # when it was on.
        activities.append(RecordActivities(ledger).record_journal)
    workers = [
        Worker(
            client,
            task_queue=task_queue,
            workflows=[CustomerWorkflow],
            activities=activities,
            activity_executor=ThreadPoolExecutor(max_workers=4),
            workflow_runner=workflow_runner(),
            max_concurrent_workflow_task_polls=8,
            max_concurrent_activity_task_polls=8,
            # Customers kept in memory between events (~180 KB each, bench/README.md); the
            # rest are replayed from history when they wake up.
            max_cached_workflows=settings.max_cached_workflows,
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=settings.sticky_queue_timeout),
        )
    ]
    if custom:
        # Developers' activities: their own queue, slots and threads (docs/activities.md),
        # so however they behave, email and workflow tasks keep theirs.
        slots = settings.max_concurrent_calls
        workers.append(
            Worker(
                client,
                task_queue=calls_task_queue(task_queue),
                activities=custom,
                activity_executor=ThreadPoolExecutor(
                    max_workers=slots, thread_name_prefix="lifecycle-call"
                ),
                max_concurrent_activities=slots,
            )
        )
    return EngineWorker(workers)


def metrics_runtime(port: int | None):
    """A Temporal runtime whose metrics (the SDK's own, and the engine's from workflows and
    activities: ``workflow.metric_meter()`` / ``activity.metric_meter()``) are served in
    Prometheus format on 127.0.0.1:PORT/metrics; None without a port."""
    if not port:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )


async def run_worker(
    rules_dir: str | Path | None = None,
    templates_dir: str | Path | None = None,
    ready_file: Path | None = None,
    settings: Settings | None = None,
) -> None:
    """``python worker.py``: embedded defaults unless TEMPORAL_ADDRESS / SMTP_HOST are set.

    Embedded: a persistent ``temporal server start-dev`` (SQLite under the data folder, web
    UI on) and an aiosmtpd sink writing ``.eml`` files to ``<data>/outbox``. A server or
    sink already listening on the configured port (say, from another worker) is reused.
    """
    import signal

    from engine.runtime.assembly import assemble
    from engine.tools.smtp_sink import SmtpSink

    settings = settings if settings is not None else Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(message)s")
    rules_dir = Path(rules_dir or settings.rules_dir)
    templates_dir = Path(templates_dir or settings.templates_dir)
    if ready_file is None and settings.ready_file:
        ready_file = Path(settings.ready_file)
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    store = PlanStore(rules_dir, templates_dir)  # refuse to start on rules that do not compile

    server: EmbeddedTemporal | None = None
    sink: SmtpSink | None = None
    address = settings.temporal_address
    if not address:
        port = settings.temporal_port
        server = EmbeddedTemporal(data / "temporal", port=port, ui_port=settings.web_ui_port)
        if port_open("127.0.0.1", port):
            log.info("using the Temporal server already on 127.0.0.1:%d", port)
            server = None
        else:
            server.start()
        address = settings.temporal_target
    smtp = settings.sink_smtp()
    if settings.smtp is None and not port_open("127.0.0.1", smtp.port):
        sink = SmtpSink(outbox=data / "outbox", port=smtp.port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        client = await connect(address, runtime=metrics_runtime(settings.metrics_port))
        async with assemble(
            client,
            store,
            smtp,
            settings.ledger_file,
            database_url=settings.database_url or None,
            templates_dir=templates_dir,
            settings=settings,
        ):
            log.info("lifecycle worker ready: %d journeys from %s", len(store.journeys), rules_dir)
            log.info("  Temporal:  %s (namespace %s)", address, client.namespace)
            if server:
                log.info("  Web UI:    %s", server.ui_address)
            if settings.smtp is None:
                log.info("  SMTP sink: 127.0.0.1:%d -> %s", smtp.port, data / "outbox")
            if settings.metrics_port:
                log.info("  Metrics:   http://127.0.0.1:%d/metrics", settings.metrics_port)
            log.info(
                "  send an event: %slifecycle send-event '%s'",
                command_environment(),
                EXAMPLE_EVENT,
            )
            if ready_file:
                ready_file.write_text(str(os.getpid()))
            await stop.wait()
            log.info("stopping")
    finally:
        if sink:
            sink.stop()
        if server:
            server.stop()
        if ready_file and ready_file.exists():
            ready_file.unlink()


EXAMPLE_EVENT = (
    '{"type": "customer.signed_up", "customer_id": "c-1", '
    '"customer": {"name": "Ann", "email": "ann@example.test", "marketing_opt_in": true}}'
)
