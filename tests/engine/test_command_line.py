"""The command line as a new user meets it: help, listing journeys, pipes, an unreachable
Temporal, a simulation whose journey fails. Each runs the real command (``main`` in this
process, or ``python -m engine`` as a child process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import COMMANDS, ExitCode, main
from engine.runtime.settings import command_environment
from engine.tools.smtp_sink import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tests" / "e2e" / "fixtures" / "rules"
TEMPLATES = ROOT / "tests" / "e2e" / "fixtures" / "templates"
TRIGGERS = {
    m
    for f in RULES.glob("*.yaml")
    for m in re.findall(r"^    trigger: (\S+)$", f.read_text(), re.M)
}


def lifecycle(*args: str, env: dict | None = None, timeout: float = 120, **kw):
    """``python -m engine ARGS`` in the repository, without the engine's settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIFECYCLE_"))}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


# --------------------------------------------------------------------------- help


def test_lifecycle_alone_prints_the_overview_with_examples():
    done = lifecycle()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: lifecycle")
    for name in COMMANDS:
        assert re.search(rf"^    {re.escape(name)}\b", done.stdout, re.M), name
    examples = done.stdout.split("examples:\n", 1)[1]
    assert "  lifecycle validate " in examples
    assert "  lifecycle simulate samples/events.jsonl --until 30d" in examples


RAW_MARKUP = re.compile(r"`|%\(|\*\*|:(?:func|class|mod):|\.\. ")


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_no_raw_markup(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lifecycle")
    assert not RAW_MARKUP.search(out), RAW_MARKUP.search(out)


# --------------------------------------------------------------------------- journeys


def test_journeys_lists_each_journey_with_its_trigger(capsys):
    code = main(["journeys", "--rules", str(RULES), "--templates", str(TEMPLATES)])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    lines = out.splitlines()
    assert re.match(r"^journey +trigger +defined at$", lines[0])
    assert re.search(r"^hello-followup +test\.hello +.*journeys\.yaml:3:3$", out, re.M)
    assert re.search(r"^once +test\.once ", out, re.M)
    assert "Two emails three seconds apart" in out


def test_journeys_json_gives_one_object_per_journey(capsys):
    code = main(["journeys", "--json", "--rules", str(RULES), "--templates", str(TEMPLATES)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == ExitCode.OK
    by_name = {r["name"]: r for r in rows}
    assert by_name["hello-followup"]["triggers"] == ["test.hello"]
    assert by_name["hello-followup"]["trigger_kinds"] == ["event"]
    assert by_name["hello-followup"]["origin"].endswith("journeys.yaml:3:3")
    assert [r["name"] for r in rows] == sorted(by_name)


@pytest.mark.parametrize("command", ["show", "graph"])
def test_show_and_graph_without_a_name_list_the_journeys(command, capsys):
    code = main([command, "--rules", str(RULES), "--templates", str(TEMPLATES)])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK
    assert re.search(r"^hello-followup +test\.hello ", out, re.M)
    assert f"name one: lifecycle {command} " in err


# --------------------------------------------------------------------------- pipes


@pytest.mark.parametrize(
    "args",
    [
        ["preview", "welcome"],
        ["simulate", "samples/events.jsonl", "--until", "3d"],
        ["journeys"],
    ],
)
def test_output_into_a_closed_pipe_ends_quietly(args, tmp_path):
    """``lifecycle ... | head``: the reader is gone before the command writes (the pipe's
    read end is closed at once), which is the worst case; the command ends with its own
    exit code and no traceback."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIFECYCLE_"))}
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine", *args],
            cwd=ROOT,
            env={**clean, "LIFECYCLE_DATA": str(tmp_path)},
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=180,
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- Temporal


@pytest.mark.parametrize(
    "args",
    [["status", "c-1"], ["why", "c-1"], ["send-event", '{"type": "x", "customer_id": "c"}']],
)
def test_an_unreachable_temporal_is_reported_fast_with_how_to_start_it(args):
    port = free_port()  # nothing listens here
    t0 = time.monotonic()
    done = lifecycle(*args, env={"LIFECYCLE_TEMPORAL_PORT": str(port)})
    elapsed = time.monotonic() - t0
    assert done.returncode == ExitCode.FAILURE
    assert done.stderr.startswith(
        f"error: cannot reach Temporal at 127.0.0.1:{port}: connection refused"
    ), done.stderr
    assert "`./run`" in done.stderr and "`python worker.py`" in done.stderr
    assert "tonic" not in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 6, f"took {elapsed:.1f} s"  # ~2 s of retries plus start-up


def test_an_unreachable_configured_address_says_to_check_it():
    port = free_port()
    done = lifecycle("status", "c-1", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{port}"})
    assert done.returncode == ExitCode.FAILURE
    assert "hint: TEMPORAL_ADDRESS points here" in done.stderr


def test_printed_commands_carry_the_settings_that_find_the_deployment():
    env = {
        "LIFECYCLE_TEMPORAL_PORT": "17233",
        "LIFECYCLE_DATA": "/tmp/x",
        "TEMPORAL_API_KEY": "secret",
        "TEMPORAL_NAMESPACE": "my shop",
    }
    assert command_environment(env) == "TEMPORAL_NAMESPACE='my shop' LIFECYCLE_TEMPORAL_PORT=17233 "
    assert command_environment({}) == ""


# --------------------------------------------------------------------------- simulate

FAILING_TEMPLATE = """\
<html><head><title>{% block subject %}Hi {{ customer.name }}{% endblock %}</title></head>
<body>
<p>Hello {{ customer.name }}</p>
<p>{{ customer.plan.upper() }}</p>
</body></html>
"""


def test_simulate_reports_a_failed_journey_and_exits_nonzero(tmp_path):
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    (rules / "a.yaml").write_text(
        "journeys:\n  welcome:\n    trigger: customer.signed_up\n"
        "    steps:\n      - send hello\n      - send hello\n"
    )
    (templates / "hello.html.j2").write_text(FAILING_TEMPLATE)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"type": "customer.signed_up", "customer_id": "c-1", '
        '"customer": {"name": "Ann", "email": "ann@example.test"}}\n'
        # No email address: both sends are skipped, and are not counted as emails.
        '{"type": "customer.signed_up", "customer_id": "c-2", "customer": {"name": "Bob"}}\n'
    )
    done = lifecycle("simulate", str(events), "--rules", str(rules), "--templates", str(templates))
    assert done.returncode == ExitCode.PROBLEMS, done.stderr
    assert "Traceback" not in done.stderr and "Completing activity" not in done.stderr
    assert done.stderr == (
        "error: 1 journey failed\n"
        "\n"
        "journey welcome failed for c-1\n"
        f"  {rules}/a.yaml:5:9: the step that failed\n"
        "      - send hello\n"
        f"  {templates}/hello.html.j2:4: error: 'dict object' has no attribute 'plan'\n"
        "      <p>{{ customer.plan.upper() }}</p>\n"
    )
    assert "send   hello: not sent, skipped (customer has no email address)" in done.stdout
    assert done.stdout.rstrip().endswith(
        "2 customers, 2 journeys started, 0 emails, 0 notifications, 0 calls, "
        "0 messages received by the SMTP sink; not sent: 2 skipped; 1 journey FAILED"
    )


def test_simulate_json_also_exits_nonzero_on_a_failed_journey(tmp_path):
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    (rules / "a.yaml").write_text(
        "journeys:\n  welcome:\n    trigger: customer.signed_up\n    steps:\n      - send hello\n"
    )
    (templates / "hello.html.j2").write_text(FAILING_TEMPLATE)
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"type": "customer.signed_up", "customer_id": "c-1", '
        '"customer": {"name": "Ann", "email": "ann@example.test"}}\n'
    )
    done = lifecycle(
        "simulate", str(events), "--json", "--rules", str(rules), "--templates", str(templates)
    )
    assert done.returncode == ExitCode.PROBLEMS
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["action"] == "end" and line["reason"] == "failed"
    assert "hello.html.j2:4: error:" in done.stderr


# --------------------------------------------------------------------------- ./run


def test_the_email_summary_keeps_its_columns_with_long_subjects():
    from engine.tools.demo import email_line

    long = "We've got your message: Grinder arrived with a cracked hopper [cmp-2001] " * 2
    lines = [
        email_line("ann@example.test", "Welcome", 80),
        # A folded Subject header parses with the fold's whitespace in front.
        email_line("carla@example.test", " " + long, 80),
        email_line("someone-with-a-very-long-address@example.test", "Hi", 80),
    ]
    assert all(len(line) <= 80 for line in lines)
    assert {
        line.index(text) for line, text in zip(lines, ("Welcome", "We've", "Hi"), strict=True)
    } == {35}
    assert lines[1].endswith("…")
    assert lines[2] == "  someone-with-a-very-long-addres… Hi"


def test_send_event_notes_only_types_nothing_uses():
    from engine.cli.send_event import unknown_type_notes

    events = [
        ("events.jsonl:1", {"type": "test.hello"}),  # a trigger
        ("events.jsonl:2", {"type": "test.helo"}),
        ("events.jsonl:3", {"type": "test.helo"}),  # one note per type
        ("events.jsonl:4", {"type": "customer.unsubscribed"}),  # the engine acts on it
        ("events.jsonl:5", {"type": "page.viewed"}),
    ]
    notes = unknown_type_notes(events, str(RULES))
    tail = " (it is sent anyway: its customer part still updates the profile)\n"
    assert notes[0] == (
        f"events.jsonl:2: note: no journey in {RULES} starts on 'test.helo', and none waits"
        f" for it{tail}hint: did you mean 'test.hello'?"
    )
    assert notes[1].startswith(
        f"events.jsonl:5: note: no journey in {RULES} starts on 'page.viewed'"
    )
    assert notes[1].endswith("hint: journeys start on: " + ", ".join(sorted(TRIGGERS)))
    assert len(notes) == 2


def test_content_commands_read_the_folders_the_worker_reads():
    """LIFECYCLE_RULES / LIFECYCLE_TEMPLATES are the default of every command's --rules and
    --templates, as they are the worker's; --rules still wins."""
    env = {"LIFECYCLE_RULES": str(RULES), "LIFECYCLE_TEMPLATES": str(TEMPLATES)}
    done = lifecycle("journeys", env=env)
    assert done.returncode == 0, done.stderr
    assert "hello-followup" in done.stdout and "welcome-series" not in done.stdout
    done = lifecycle("validate", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = lifecycle("journeys", "--rules", "rules", "--templates", "templates", env=env)
    assert "welcome-series" in shipped.stdout
    assert "default: LIFECYCLE_RULES, else rules/" in lifecycle("validate", "--help").stdout
