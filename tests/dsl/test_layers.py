"""The content language stands alone: importing ``dsl`` and compiling with it loads nothing
of the engine (no registry, no activity code, no render pool)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Compiles a journey that sends a template and calls an activity, with a catalogue given
# as plain data and no renderer, then lists the engine and activity modules loaded.
_PROBE = """
import json, sys
import dsl.compiler
from dsl.catalogue import ActivityDecl, Param

rules = '''
settings:
  teams: {support: s@acme.test}
journeys:
  j:
    trigger: order.placed
    steps:
      - send welcome
      - notify support with alert
      - call create_ticket(priority="low") as t
      - set customer.ticket = t.id
'''
catalogue = {"create_ticket": ActivityDecl("create_ticket", {"priority": Param("str", True)})}
result = dsl.compiler.compile_text(rules, "r.yaml", sys.argv[1], catalogue)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("engine", "activities", "pebble"))
print(json.dumps({"problems": [str(p) for p in result.problems], "loaded": loaded}))
"""


def _run(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_compiling_imports_nothing_of_the_engine():
    templates = ROOT / "tests" / "dsl" / "fixtures" / "templates"
    got = _run(_PROBE, str(templates))
    assert got == {"problems": [], "loaded": []}


def test_every_dsl_module_imports_without_the_engine():
    modules = sorted(f"dsl.{p.stem}" for p in (ROOT / "dsl").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('engine', 'activities'))}))\n"
    )
    assert _run(code) == {"loaded": []}
