"""The HTTP API on real parts: uvicorn on a free loopback port, a real Temporal dev server,
the real worker (in process, on its own task queue), a real SMTP server, an httpx client.

Out: ``api`` (a running ``Api``: its base URL, keys, an ``httpx.AsyncClient``, the sink and
the task queue), plus ``serve_app`` (a context manager that runs any app on uvicorn) for the
tests that need their own settings (Temporal down, tiny limits).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from engine.api.app import create_app
from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import connect
from engine.runtime.plans import PlanStore
from engine.runtime.settings import Settings
from engine.tools.smtp_sink import SmtpSink, free_port

# The e2e tests' dev server fixture (one per session, loopback, stopped by PID).
from tests.e2e.conftest import temporal_server as _temporal_server  # noqa: E402

temporal_server = _temporal_server

FIXTURES = Path(__file__).parent / "fixtures"
RULES = FIXTURES / "rules"
TEMPLATES = FIXTURES / "templates"
WRITE_KEY = "wk_test_write_0001"
ADMIN_KEY = "ak_test_admin_0001"
SECRET = "test-secret-0123456789abcdef"


def settings_for(temporal_address: str, data: Path, **extra) -> Settings:
    values = dict(
        temporal_address=temporal_address,
        write_keys=(WRITE_KEY,),
        admin_keys=(ADMIN_KEY,),
        secret=SECRET,
        data_dir=str(data),
        rules_dir=str(RULES),
        templates_dir=str(TEMPLATES),
        api_temporal_timeout=3.0,
    )
    values.update(extra)
    return Settings(**values)


def basic(key: str) -> dict:
    """Segment's way: Basic auth with the key as user name and no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def serve_app(app, port: int | None = None):
    """``app`` on uvicorn at 127.0.0.1:PORT; yields its base URL; stopped at the end."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    if task.done():
        task.result()  # raises why it did not start
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient
    temporal: object  # the Temporal client
    sink: SmtpSink
    task_queue: str
    settings: Settings


@pytest.fixture(scope="module")
async def api(temporal_server, tmp_path_factory):
    """The API with a worker behind it, sharing one task queue, for the whole module."""
    data = tmp_path_factory.mktemp("api")
    client = await connect(temporal_server.address)
    sink = SmtpSink().start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings_for(temporal_server.address, data, public_url=url)
    queue = f"api-{uuid.uuid4().hex[:8]}"
    store = PlanStore(RULES, TEMPLATES)
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port, starttls="false", timeout=5)
    try:
        async with assemble(client, store, smtp, data / "ledger.sqlite", queue, settings=settings):
            app = create_app(settings, client=client, store=store, task_queue=queue)
            async with serve_app(app, port) as base:
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    yield Api(base, http, client, sink, queue, settings)
    finally:
        sink.stop()


def customer_id(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
