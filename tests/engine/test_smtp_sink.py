"""The capturing SMTP sink: outbox files, waiting, and the standalone command."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from engine.tools.smtp_sink import SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[2]
RAW = b"From: a@acme.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def test_outbox_gets_one_eml_per_message(tmp_path):
    with SmtpSink(outbox=tmp_path / "outbox") as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            client.sendmail("a@acme.test", ["b@example.test"], RAW)
            client.sendmail("a@acme.test", ["c@example.test"], RAW)
        msgs = sink.wait_for(2)
    files = sorted((tmp_path / "outbox").glob("*.eml"), key=lambda p: p.stem.split("-")[-1])
    assert [p.stem.split("-")[-1] for p in files] == ["1", "2"]
    assert files[0].read_bytes() == msgs[0].raw
    assert msgs[1].rcpt_tos == ["c@example.test"]
    assert msgs[0].message["Subject"] == "hi"


def test_wait_for_times_out_when_nothing_arrives():
    with SmtpSink() as sink:
        with pytest.raises(TimeoutError, match="expected 1 messages, got 0"):
            sink.wait_for(1, timeout=0.1)


def test_standalone_command_listens_and_stops_on_sigterm(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.tools.smtp_sink",
            "--port",
            str(port),
            "--outbox",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline()
        assert line == f"SMTP sink listening on 127.0.0.1:{port}, writing to {tmp_path}\n"
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("a@acme.test", ["b@example.test"], RAW)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped after 1 messages" in proc.stderr.read()
    assert len(list(tmp_path.glob("*.eml"))) == 1
