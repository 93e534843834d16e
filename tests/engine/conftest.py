"""Fixtures for engine tests: the template fixtures folder, a real SMTP sink on loopback,
and a PostgreSQL database URL (skipped when PostgreSQL is not reachable, failed in CI)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from engine.delivery.smtp import SmtpSettings
from engine.tools.smtp_sink import SmtpSink

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def templates_dir() -> Path:
    return TEMPLATES


@pytest.fixture
def sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_settings(sink: SmtpSink) -> SmtpSettings:
    # starttls "auto": the sink offers no STARTTLS, so this also covers plain fallback.
    return SmtpSettings(host="127.0.0.1", port=sink.port, timeout=5)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A reachable PostgreSQL URL; skip without one, except in CI where it must exist."""
    import psycopg

    url = os.environ.get("LIFECYCLE_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {url}: {exc}".strip()
        if _in_ci():
            pytest.fail(f"{reason} (CI is set, so PostgreSQL tests must run)")
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_table(postgres_url: str):
    """A table name unique to this test, dropped afterwards (with the ledger's claim table)."""
    import psycopg

    table = f"ledger_test_{uuid.uuid4().hex[:12]}"
    yield table
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            f"DROP TABLE IF EXISTS {table}, {table}_claim, {table}_suppressed, {table}_record"
        )
