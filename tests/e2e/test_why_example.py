"""The `lifecycle why` example of docs/operations.md ("Why didn't this customer get…"), run
as written against a worker on the shipped rules and templates (as `./run` starts one),
and its output compared with the page's, times aside."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from engine.tools.smtp_sink import free_port

from .conftest import REPO, WorkerProcess, clean_env, wait_until
from .test_command_line_live import shell_env

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def example() -> tuple[list[str], str]:
    """The commands of the page's why example (one per command, continuation lines
    joined) and the output it shows."""
    text = (REPO / "docs" / "operations.md").read_text()
    section = text.split("## Why didn't this customer get", 1)[1]
    block = re.findall(r"^```sh\n(.*?)^```$", section, re.M | re.S)[0]
    commands = re.split(r"\n(?=\.venv/bin/)", block.strip())
    output = re.search(r"^```text\n(.*?)^```$", section, re.M | re.S)[1]
    return commands, output


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    data = tmp_path_factory.mktemp("shipped")
    port = free_port()
    env = clean_env(
        LIFECYCLE_RULES=str(REPO / "rules"),
        LIFECYCLE_TEMPLATES=str(REPO / "templates"),
        LIFECYCLE_TEMPORAL_PORT=str(port),
        LIFECYCLE_UI_PORT=str(free_port()),
        LIFECYCLE_SMTP_PORT=str(free_port()),
    )
    worker = WorkerProcess(data, env).start()
    try:
        yield port
    finally:
        worker.terminate(timeout=20)


def sh(command: str, port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=shell_env(LIFECYCLE_TEMPORAL_PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_why_example_runs_as_written(shipped):
    (send, why), output = example()
    sent = sh(send, shipped)
    assert sent.returncode == 0, sent.stderr
    customer = json.loads(send.split(" ", 2)[2].strip("'"))["customer_id"]

    def processed():
        done = sh(f".venv/bin/lifecycle status {customer} --json", shipped)
        return done.returncode == 0 and json.loads(done.stdout)["events_processed"] == 1

    await wait_until(processed, 30, "the example's event")
    done = sh(why, shipped)
    assert done.returncode == 0, done.stderr
    assert STAMP.sub("T", done.stdout) == STAMP.sub("T", output)
