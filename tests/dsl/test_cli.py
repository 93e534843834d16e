"""``lifecycle validate`` and ``lifecycle show`` on fixture folders."""

from __future__ import annotations

import json

from engine.cli import ExitCode, main

from .frontend_support import FIXTURES

TEMPLATES = str(FIXTURES / "templates")
BAD = FIXTURES / "bad_rules"

# Every mistake planted in fixtures/bad_rules: (file, line, col, message start).
EXPECTED = [
    ("onboarding.yaml", 4, 15, "len() needs a string or a list"),
    ("onboarding.yaml", 6, 14, "unknown template 'welcom'"),
    ("onboarding.yaml", 7, 14, "a duration must be longer than zero"),
    ("onboarding.yaml", 8, 16, "unknown team 'suport'"),
    ("onboarding.yaml", 9, 12, "unknown name 'costumer'"),
    ("onboarding.yaml", 11, 25, "'+' cannot add a string and a number"),
    ("onboarding.yaml", 13, 9, "unreachable step"),
    ("settings.yaml", 5, 3, "unknown key 'colour' in settings"),
    ("support.yaml", 2, 3, "journey 'welcome' is defined twice"),
    ("support.yaml", 8, 11, "YAML reads 'off' as a boolean"),
    ("support.yaml", 9, 14, "unknown reentry policy 'sometimes'"),
    ("support.yaml", 10, 5, "unknown key 'stesp'"),
    ("support.yaml", 12, 14, "unknown activity 'create_tiket'"),
    ("support.yaml", 13, 37, "argument 'priority' of create_ticket() must be a string"),
    ("support.yaml", 14, 36, "wait for needs 'within DURATION'"),
    ("support.yaml", 16, 33, "unknown function 'lenn'"),
    ("support.yaml", 17, 16, "unknown time unit 'fortnights'"),
    ("support.yaml", 18, 17, "'event' is only known inside a 'wait for'"),
    ("support.yaml", 19, 9, "an 'if' step needs a block"),
]


def test_validate_reports_every_mistake_at_its_position(capsys):
    code = main(["validate", "--rules", str(BAD), "--templates", TEMPLATES])
    out, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    headers = [ln for ln in out.splitlines() if ": error: " in ln]
    for file, line, col, message in EXPECTED:
        prefix = f"{BAD / file}:{line}:{col}: error: {message}"
        assert any(h.startswith(prefix) for h in headers), prefix
    template_error = (
        f"{FIXTURES / 'templates' / 'broken.html.j2'}:3:1: error: template syntax error"
    )
    assert any(h.startswith(template_error) for h in headers)
    assert len(headers) == len(EXPECTED) + 1
    # Sorted by file, line, column.
    keys = [(h.split(":")[0], int(h.split(":")[1]), int(h.split(":")[2])) for h in headers]
    assert keys == sorted(keys)
    assert err.strip() == "20 errors in 4 files"


def test_validate_clean_rules(capsys):
    code = main(["validate", "--rules", str(FIXTURES / "good_rules"), "--templates", TEMPLATES])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK
    assert out == ""
    assert err.strip() == "ok: 2 journeys, 8 templates"


def test_validate_missing_folder(capsys, tmp_path):
    code = main(["validate", "--rules", str(tmp_path / "nope"), "--templates", TEMPLATES])
    out, _ = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert out.startswith(f"{tmp_path / 'nope'}:1:1: error: rules folder not found")


def test_show_prints_the_plan(capsys):
    args = ["show", "complaint-escalation", "--rules", str(FIXTURES / "good_rules")]
    code = main([*args, "--templates", TEMPLATES])
    out, _ = capsys.readouterr()
    assert code == ExitCode.OK
    assert "  trigger: complaint.opened" in out
    assert "notify team-lead <leads@acme.test> with complaint-overdue" in out
    assert 'call create_ticket(priority="urgent", complaint=trigger.complaint_id) as ticket' in out


def test_show_json(capsys):
    args = ["show", "welcome-series", "--rules", str(FIXTURES / "good_rules")]
    code = main([*args, "--templates", TEMPLATES, "--json"])
    out, _ = capsys.readouterr()
    assert code == ExitCode.OK
    data = json.loads(out)
    assert data["name"] == "welcome-series"
    assert [s["kind"] for s in data["steps"]] == ["send", "wait", "if", "wait_for"]


def test_show_unknown_journey_suggests(capsys):
    args = ["show", "welcome-seris", "--rules", str(FIXTURES / "good_rules")]
    code = main([*args, "--templates", TEMPLATES])
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == "error: unknown journey 'welcome-seris'\nhint: did you mean 'welcome-series'?\n"
