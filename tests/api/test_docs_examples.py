"""The shell examples of docs/api.md run as written against a running API, and print what
their comments say they print."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

from engine.delivery.unsubscribe import make_token
from tests.api.conftest import ADMIN_KEY, SECRET, WRITE_KEY

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)


async def test_every_curl_example_in_docs_api_md_works_as_printed(api, tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "keys.json").write_text(
        json.dumps({"write_key": WRITE_KEY, "admin_key": ADMIN_KEY, "secret": SECRET})
    )
    token = make_token(SECRET, "c-1001")
    ran = 0
    for block in blocks():
        if "curl" not in block:
            continue
        script = block.replace("API=http://127.0.0.1:8080", f"API={api.url}")
        script = script.replace("TOKEN-FROM-THE-EMAIL", token)
        setup = next(b for b in blocks() if "WK=$(" in b).replace(
            "API=http://127.0.0.1:8080", f"API={api.url}"
        )
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", setup + "\n" + script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (block, result.stderr)
        for expected in re.findall(r"^# (\{.*\}|\d{3})\s*(?:\(\d+\))?$", block, re.M):
            assert expected in result.stdout.replace("\n", "\n"), (block, result.stdout)
        ran += 1
    assert ran >= 5
