"""Shared pieces for end-to-end tests on the real Temporal dev server.

In: the fixture rules and templates under ``tests/e2e/fixtures``.
Out: a session-wide ``temporal_server`` (``temporal server start-dev``, SQLite in a temp
folder, loopback, free ports), a ``client`` to it, ``WorkerProcess`` (``python worker.py``
as a child process, stopped by PID), ``in_process_worker`` (the real worker on a unique
task queue), ``wait_until`` (a bounded poll), and small helpers to read a customer back.

Everything started here is stopped in a ``finally``, by PID, also when a test fails.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import connect, get_status, send_event
from engine.runtime.plans import PlanStore
from engine.runtime.servers import EmbeddedTemporal
from engine.tools.smtp_sink import SmtpSink, free_port

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
RULES = FIXTURES / "rules"
TEMPLATES = FIXTURES / "templates"
BIN = Path(sys.executable).parent  # .venv/bin, also when it is not on PATH


# --------------------------------------------------------------------------- waiting


async def wait_until(predicate: Callable, timeout: float = 30.0, what: str = "condition"):
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that.

    Bounded, never a timing assertion: the timeout only stops a hung test.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if inspect.isawaitable(last):
                last = await last
        except Exception as err:  # e.g. a query before the workflow exists
            last = err
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}"
            )
        await asyncio.sleep(0.2)


async def wait_messages(sink: SmtpSink, count: int, timeout: float = 30.0) -> list:
    """The sink's messages once there are at least ``count`` (the event loop keeps running)."""
    await wait_until(lambda: len(sink.messages) >= count, timeout, f"{count} email(s)")
    return list(sink.messages)


# --------------------------------------------------------------------------- customers


def new_customer(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def event(etype: str, customer_id: str, customer: dict | None = None, **kw) -> dict:
    ev = {"type": etype, "customer_id": customer_id, "customer": customer or {}, "data": {}}
    ev.update(kw)
    return ev


async def status(client, customer_id: str) -> dict:
    return await get_status(client, customer_id)


def ends(st: dict, journey: str) -> list[dict]:
    return [j for j in st["journal"] if j["journey"] == journey and j["action"] == "end"]


def sends(st: dict, journey: str) -> list[dict]:
    return [
        j for j in st["journal"] if j["journey"] == journey and j["action"] in ("send", "notify")
    ]


async def wait_end(client, customer_id: str, journey: str, timeout: float = 30.0) -> dict:
    """The customer's status once ``journey`` has ended; returns the status."""

    async def ended():
        st = await status(client, customer_id)
        return st if ends(st, journey) else None

    return await wait_until(ended, timeout, f"journey {journey} of {customer_id} to end")


def subjects(messages) -> list[str]:
    return [m.message["Subject"] for m in messages]


# --------------------------------------------------------------------------- servers


def start_temporal(data_dir: Path, port: int | None = None) -> EmbeddedTemporal:
    """A headless dev server on free ports. A port found free can be taken before the
    server binds it (the dev server picks its internal ports too, and other tests start
    servers): when the server exits saying so, it is started again on new ports."""
    for attempt in range(3):
        server = EmbeddedTemporal(
            data_dir, port=port or free_port(), ui_port=free_port(), headless=True
        )
        try:
            return server.start()
        except RuntimeError:
            log = data_dir / "temporal.log"
            taken = log.exists() and "address already in use" in log.read_text(errors="replace")
            if not taken or port is not None or attempt == 2:
                raise
            log.rename(data_dir / f"temporal.{attempt}.log")  # kept for a look afterwards
    raise AssertionError("not reached")


def kill9(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory):
    """One dev server for the in-process tests (each on its own task queue)."""
    server = start_temporal(tmp_path_factory.mktemp("temporal"))
    try:
        yield server
    finally:
        server.stop()
        kill9(server.process)


@pytest.fixture(scope="module")
async def client(temporal_server):
    return await connect(temporal_server.address)


@pytest.fixture(scope="module")
def store() -> PlanStore:
    return PlanStore(RULES, TEMPLATES)


@pytest.fixture
def sink():
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


# --------------------------------------------------------------------------- workers


@asynccontextmanager
async def in_process_worker(client, store: PlanStore, smtp_port: int, data: Path):
    """The real worker (workflow, email activity, ledger) on a fresh task queue; yields
    a ``send(event)`` coroutine function that delivers events to that queue."""
    smtp = SmtpSettings(host="127.0.0.1", port=smtp_port, starttls="false", timeout=5)
    queue = f"e2e-{uuid.uuid4().hex[:8]}"

    async def send(ev: dict) -> str:
        return await send_event(client, ev, task_queue=queue)

    ledger = data / f"ledger-{uuid.uuid4().hex[:6]}.sqlite"
    async with assemble(client, store, smtp, ledger, queue, templates_dir=TEMPLATES):
        yield send


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any engine configuration, plus ``extra``."""
    prefixes = ("TEMPORAL_", "SMTP_", "LIFECYCLE_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(LIFECYCLE_RULES=str(RULES), LIFECYCLE_TEMPLATES=str(TEMPLATES), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class WorkerProcess:
    """``python worker.py`` as a child process; ready when it writes its ready file."""

    def __init__(self, data: Path, env: dict[str, str], name: str = "worker") -> None:
        self.data = data
        self.ready_file = data / f"{name}.ready"
        self.log_path = data / f"{name}.log"
        self.env = dict(env, LIFECYCLE_DATA=str(data), LIFECYCLE_READY_FILE=str(self.ready_file))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (owned by the child)
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "worker.py")],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready after {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; returns the exit code (SIGKILL if it does not stop)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill9(self.proc)
        return self.proc.returncode

    def kill9(self) -> None:
        kill9(self.proc)


@pytest.fixture
def workers():
    """Start workers through this list; any still running at the end are stopped."""
    started: list[WorkerProcess] = []

    def start(data: Path, env: dict[str, str], name: str = "worker") -> WorkerProcess:
        w = WorkerProcess(data, env, name)
        started.append(w)
        return w.start()

    try:
        yield start
    finally:
        for w in started:
            w.terminate(timeout=20)


def worker_env(server: EmbeddedTemporal, smtp_port: int, **extra: str) -> dict[str, str]:
    """Environment for a worker that uses ``server`` and an SMTP server on ``smtp_port``."""
    return clean_env(
        TEMPORAL_ADDRESS=server.address,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_STARTTLS="false",
        **extra,
    )
