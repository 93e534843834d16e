"""The README's first command, ``./run``, on a fresh data folder: it must start the worker
with its embedded Temporal dev server and SMTP sink, deliver the sample customers' emails,
print the 30-day simulation, and ``./run stop`` must stop everything it started."""

from __future__ import annotations

import os
import subprocess

from engine.runtime.servers import port_open
from engine.tools.smtp_sink import free_port
from tests.e2e.conftest import REPO


def test_readme_run_delivers_email_and_stops(tmp_path):
    ports = {
        "LIFECYCLE_TEMPORAL_PORT": str(free_port()),
        "LIFECYCLE_UI_PORT": str(free_port()),
        "LIFECYCLE_SMTP_PORT": str(free_port()),
    }
    env = dict(os.environ, LIFECYCLE_DATA=str(tmp_path), **ports)
    env.pop("TEMPORAL_ADDRESS", None)
    env.pop("SMTP_HOST", None)
    try:
        done = subprocess.run(
            ["./run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, out + done.stderr
        assert "ok: " in out  # validate ran
        emails = list((tmp_path / "outbox").glob("*.eml"))
        assert emails, out
        assert "Welcome to Acme Shop" in out  # a delivered subject, listed from the outbox
        assert f"http://127.0.0.1:{ports['LIFECYCLE_UI_PORT']}" in out
        assert "customer c-ann" in out and "day  30" not in out  # the simulated timeline
        assert port_open("127.0.0.1", int(ports["LIFECYCLE_TEMPORAL_PORT"]))
    finally:
        stop = subprocess.run(
            ["./run", "stop"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
    assert "worker stopped" in stop.stdout
    assert not port_open("127.0.0.1", int(ports["LIFECYCLE_TEMPORAL_PORT"]))
    assert not port_open("127.0.0.1", int(ports["LIFECYCLE_SMTP_PORT"]))
