"""docs/rules.schema.json: generated from the loader's shape definitions, accepts every
shipped rules file, and refuses files the loader refuses for their shape."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from dsl import loader
from dsl.loader import load_text
from dsl.rules_schema import rules_json_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "rules.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_what_the_loader_generates():
    assert json.loads(SCHEMA_FILE.read_text()) == rules_json_schema(), (
        "regenerate it: python -m dsl.rules_schema > docs/rules.schema.json"
    )


def test_every_key_the_loader_knows_is_in_the_schema():
    schema = rules_json_schema()
    assert set(schema["properties"]) == set(loader.TOP_KEYS)
    assert set(schema["properties"]["settings"]["properties"]) == set(loader.SETTINGS_KEYS)
    assert set(schema["$defs"]["journey"]["properties"]) == set(loader.JOURNEY_KEYS)
    assert set(schema["properties"]["schema"]["properties"]) == set(loader.SCHEMA_KEYS)


@pytest.mark.parametrize("path", sorted((ROOT / "rules").rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_shipped_rules_file_is_valid(validator, path):
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


BAD = {
    "unknown top-level key": "jouneys:\n  j:\n    trigger: a.b\n    steps: [exit]\n",
    "unknown journey key": "journeys:\n  j:\n    trigger: a.b\n    stesp: [exit]\n    steps: [exit]\n",
    "no trigger": "journeys:\n  j:\n    steps: [exit]\n",
    "no steps": "journeys:\n  j:\n    trigger: a.b\n",
    "a number as text": "journeys:\n  j:\n    trigger: a.b\n    reentry: 5\n    steps: [exit]\n",
    "empty trigger list": "journeys:\n  j:\n    trigger: []\n    steps: [exit]\n",
    "a list as a step": "journeys:\n  j:\n    trigger: a.b\n    steps:\n      - [exit]\n",
    "unknown block key": (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n"
        "      - wait for c.d within 1 day:\n          recieved: [exit]\n"
    ),
    "else beside a wait": (
        "journeys:\n  j:\n    trigger: a.b\n    steps:\n"
        "      - wait for c.d within 1 day:\n        else: [exit]\n"
    ),
    "unknown setting": "settings:\n  sendr: a@b.test\n",
    "teams not a mapping": "settings:\n  teams: [a@b.test]\n",
    "unknown field type": "schema:\n  customer: {name: txt}\n",
    "strict not a boolean": "schema:\n  strict: maybe\n",
    "unknown schema key": "schema:\n  custmer: {name: text}\n",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_refused_by_the_schema_and_the_loader(validator, name):
    text = BAD[name]
    assert list(validator.iter_errors(yaml.safe_load(text))), f"the schema accepts: {name}"
    _, problems = load_text(text, "bad.yaml")
    if name not in ("no trigger", "no steps"):  # the compiler reports those two
        assert problems, f"the loader accepts: {name}"
