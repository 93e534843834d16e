"""The command line against a running deployment, as ``./run`` leaves one: ``python worker.py``
on embedded defaults on a port that is not the default one, and ``lifecycle`` commands run as
child processes the way a user types them (in another shell, with only what was printed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from engine.tools.smtp_sink import free_port

from .conftest import BIN, REPO, RULES, TEMPLATES, WorkerProcess, clean_env, wait_until


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A worker with its embedded Temporal and SMTP sink, on free non-default ports."""
    data = tmp_path_factory.mktemp("deployment")
    port = free_port()
    env = clean_env(
        LIFECYCLE_TEMPORAL_PORT=str(port),
        LIFECYCLE_UI_PORT=str(free_port()),
        LIFECYCLE_SMTP_PORT=str(free_port()),
    )
    worker = WorkerProcess(data, env).start()
    try:
        yield {"port": port, "worker": worker, "outbox": data / "outbox"}
    finally:
        worker.terminate(timeout=20)


def shell_env(**extra: str) -> dict[str, str]:
    """A new shell's environment: none of the engine's settings, .venv/bin on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIFECYCLE_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def lifecycle(*args: str, port: int) -> subprocess.CompletedProcess:
    """A command with the settings the worker has (its port, its rules)."""
    settings = {"LIFECYCLE_TEMPORAL_PORT": str(port), "LIFECYCLE_RULES": str(RULES)}
    return subprocess.run(
        [str(BIN / "lifecycle"), *args],
        cwd=REPO,
        env=shell_env(**settings, LIFECYCLE_TEMPLATES=str(TEMPLATES)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def customer() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def status(cid: str, port: int) -> dict | None:
    done = lifecycle("status", cid, "--json", port=port)
    return json.loads(done.stdout) if done.returncode == 0 else None


async def test_the_command_the_worker_prints_works_as_printed(deployment):
    line = re.search(r"send an event: (.+)$", deployment["worker"].log(), re.M)
    assert line, deployment["worker"].log()
    command = line[1]
    assert command.startswith(f"LIFECYCLE_TEMPORAL_PORT={deployment['port']} ")
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sent (no id) customer.signed_up -> customer-c-1")


async def test_a_duplicate_event_id_is_reported_and_not_sent_again(deployment):
    port, cid = deployment["port"], customer()
    event = json.dumps({"id": "evt-1", "type": "test.once", "customer_id": cid})
    first = lifecycle("send-event", event, port=port)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"sent evt-1 test.once -> customer-{cid}\n"
    again = lifecycle("send-event", event, port=port)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        f"duplicate evt-1 test.once -> customer {cid} already has an event with this id;"
        " not sent again\n"
    )
    # Two lines with one id in one file: the second is the duplicate.
    other = json.dumps({"id": "evt-2", "type": "test.once", "customer_id": cid})
    events = Path(deployment["outbox"]).parent / f"{cid}.jsonl"
    events.write_text(f"{other}\n{other}\n")
    both = lifecycle("send-event", str(events), port=port)
    assert both.stdout.splitlines() == [
        f"sent evt-2 test.once -> customer-{cid}",
        f"duplicate evt-2 test.once -> customer {cid} already has an event with this id;"
        " not sent again",
    ]
    st = await wait_until(
        lambda: (s := status(cid, port)) and s["events_processed"] == 2 and s, 30, "2 events"
    )
    assert st["events_processed"] == 2


async def test_an_event_no_journey_uses_is_sent_with_a_note_and_a_suggestion(deployment):
    port, cid = deployment["port"], customer()
    event = json.dumps({"type": "test.helo", "customer_id": cid, "customer": {"plan": "gold"}})
    done = lifecycle("send-event", event, port=port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sent (no id) test.helo -> customer-{cid}\n"
    assert done.stderr == (
        f"event: note: no journey in {RULES} starts on 'test.helo', and none waits for it"
        " (it is sent anyway: its customer part still updates the profile)\n"
        "hint: did you mean 'test.hello'?\n"
    )
    # Sent anyway: the profile got the update.
    st = await wait_until(lambda: status(cid, port), 30, "the customer")
    assert st["profile"] == {"plan": "gold"}


async def test_commands_find_the_worker_by_its_port_setting(deployment):
    port, cid = deployment["port"], customer()
    event = json.dumps(
        {
            "type": "test.hello",
            "customer_id": cid,
            "customer": {"name": "Ann", "email": "ann@x.test"},
        }
    )
    assert lifecycle("send-event", event, port=port).returncode == 0
    st = await wait_until(lambda: status(cid, port), 30, "the customer")
    assert st["customer_id"] == cid
    # Without the setting the same command looks on the default port (nothing there is
    # this deployment) and says what to do.
    elsewhere = lifecycle("status", cid, port=free_port())
    assert elsewhere.returncode == 3
    assert "LIFECYCLE_TEMPORAL_PORT or TEMPORAL_ADDRESS needs the same setting" in elsewhere.stderr


async def test_the_worker_log_has_no_smtp_protocol_lines(deployment):
    port, cid = deployment["port"], customer()
    event = json.dumps(
        {
            "type": "test.hello",
            "customer_id": cid,
            "customer": {"name": "Ann", "email": "ann@x.test"},
        }
    )
    before = len(list(deployment["outbox"].glob("*.eml")))
    assert lifecycle("send-event", event, port=port).returncode == 0
    await wait_until(lambda: len(list(deployment["outbox"].glob("*.eml"))) > before, 30, "an email")
    log = deployment["worker"].log()
    assert "lifecycle worker ready" in log
    for protocol in ("EHLO", "RCPT TO", "handling connection", "Peer:", "AUTH mechanisms"):
        assert protocol not in log, log


def operations_example() -> str:
    """The Python example of docs/operations.md (the block that sends an event)."""
    text = (REPO / "docs" / "operations.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    (block,) = [b for b in blocks if "send_event(" in b]
    return block


async def test_the_python_example_of_the_operations_page_runs_as_written(deployment, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(operations_example())
    done = subprocess.run(
        [str(BIN / "python"), str(script)],
        cwd=tmp_path,
        env=shell_env(TEMPORAL_ADDRESS=f"127.0.0.1:{deployment['port']}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent to customer-c-42\n"
    st = await wait_until(lambda: status("c-42", deployment["port"]), 30, "customer c-42")
    assert st["events_processed"] >= 1


async def test_without_a_worker_events_are_kept_and_status_says_to_start_one(tmp_path):
    """Temporal up, no worker (a fresh server: nothing has ever polled it)."""
    from .conftest import kill9, start_temporal

    server = start_temporal(tmp_path / "temporal")
    try:
        address = {"TEMPORAL_ADDRESS": server.address}
        event = json.dumps({"id": "e-1", "type": "test.hello", "customer_id": "c-1"})

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(BIN / "lifecycle"), *args],
                cwd=REPO,
                env=shell_env(**address, LIFECYCLE_RULES=str(RULES)),
                capture_output=True,
                text=True,
                timeout=60,
            )

        assert run("send-event", event).stdout == "sent e-1 test.hello -> customer-c-1\n"
        again = run("send-event", event)
        assert again.returncode == 0
        assert again.stdout == "sent e-1 test.hello -> customer-c-1\n"
        assert again.stderr.startswith("note: no worker answered, so duplicates")
        st = run("status", "c-1")
        assert st.returncode == 1
        assert st.stderr == (
            "error: customer 'c-1' did not answer: no worker is running (nothing polls the"
            " task queue 'lifecycle'); start one with `python worker.py` or `./run`"
            " (its events are kept until then)\n"
        )
    finally:
        server.stop()
        kill9(server.process)


async def test_why_explains_a_customer_who_was_never_sent_the_email(deployment):
    """``lifecycle why`` as a user runs it: an unsubscribed customer's emails suppressed,
    a start refused while the journey runs and one refused by re-entry afterwards."""
    port, cid = deployment["port"], customer()
    profile = {"email": f"{cid}@example.test"}
    events = Path(deployment["outbox"]).parent / f"{cid}-why.jsonl"
    lines = [
        {"id": "w-1", "type": "customer.unsubscribed", "customer_id": cid, "customer": profile},
        {"id": "w-2", "type": "test.hello", "customer_id": cid},
        {"id": "w-3", "type": "test.hello", "customer_id": cid},
    ]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert lifecycle("send-event", str(events), port=port).returncode == 0

    def ended():
        st = status(cid, port)
        return st and any(line["action"] == "end" for line in st["journal"]) and st

    await wait_until(ended, 30, "the journey's end")
    again = json.dumps({"id": "w-4", "type": "test.hello", "customer_id": cid})
    assert lifecycle("send-event", again, port=port).returncode == 0
    await wait_until(lambda: (s := status(cid, port)) and s["events_processed"] == 4, 30, "w-4")

    done = lifecycle("why", cid, port=port)
    assert done.returncode == 0, done.stderr
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "T", done.stdout)
    assert text == (
        f"why: customer {cid}\n"
        "events and triggers:\n"
        "  T  customer.unsubscribed (id w-1)\n"
        "    starts no journey\n"
        "  T  test.hello (id w-2)\n"
        "    hello-followup: started (hello-followup:1); ended T (completed)\n"
        "  T  test.hello (id w-3)\n"
        "    hello-followup: not started: it is already active (hello-followup:1)\n"
        "  T  test.hello (id w-4)\n"
        "    hello-followup: not started: it started before (at T) and its re-entry is never\n"
        "messages:\n"
        "  T  hello-followup  send hello: suppressed (unsubscribed): the customer unsubscribed\n"
        "  T  hello-followup  send followup: suppressed (unsubscribed): the customer"
        " unsubscribed\n"
    )
    as_json = lifecycle("why", cid, "--journey", "hello-followup", "--json", port=port)
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert [(m["template"], m["outcome"], m["reason"]) for m in report["messages"]] == [
        ("hello", "suppressed", "unsubscribed"),
        ("followup", "suppressed", "unsubscribed"),
    ]
    assert [[j["reason"] for j in e["journeys"] if "reason" in j] for e in report["entries"]] == [
        [],
        ["active"],
        ["reentry"],
    ]
    unknown = lifecycle("why", f"{cid}-nobody", port=port)
    assert (unknown.returncode, unknown.stderr) == (1, f"error: no customer '{cid}-nobody'\n")
    elsewhere = lifecycle("why", cid, port=free_port())  # nothing there: said as status says it
    assert elsewhere.returncode == 3
    assert "LIFECYCLE_TEMPORAL_PORT or TEMPORAL_ADDRESS needs the same setting" in elsewhere.stderr
