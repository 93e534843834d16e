"""Schemathesis against the running API's own /openapi.json: no 500, no answer that breaks
the description (status codes, content types, bodies, headers), with and without keys."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import ADMIN_KEY, WRITE_KEY

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)


async def _schemathesis(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    st = Path(sys.executable).parent / "schemathesis"
    cmd = [
        str(st), "run", f"{url}/openapi.json",
        "--checks", CHECKS,
        "--max-examples", "30",
        "--seed", "20261201",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "20",
        "--report", "junit", "--report-dir", str(tmp_path),
        *extra,
    ]  # fmt: skip
    # In a thread: the API under test runs on this test's event loop.
    return await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(api, tmp_path):
    for headers in (
        ["-H", f"Authorization: Bearer {WRITE_KEY}"],
        ["-H", f"Authorization: Bearer {ADMIN_KEY}"],
        [],
    ):
        result = await _schemathesis(api.url, tmp_path, *headers)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "passed" in result.stdout.lower()
