"""engine.runtime.settings: every environment variable in one dataclass, checked, and the
table of docs/operations.md generated from it."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from engine.delivery.smtp import SmtpSettings, SmtpSettingsError
from engine.runtime.settings import VARIABLES, Settings, SettingsError, setting, variables_table

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"


def doc_table() -> str:
    text = DOC.read_text()
    start = text.index("-->\n", text.index("<!-- settings table")) + 4
    return text[start : text.index("<!-- end of settings table -->")]


def test_the_operations_page_lists_exactly_the_settings_variables():
    documented = re.findall(r"^\| `([A-Z_]+)` \|", doc_table(), flags=re.M)
    assert sorted(documented) == sorted(v.name for v in VARIABLES)
    assert len(documented) == len(set(documented))
    # ... word for word as generated (python -m engine.runtime.settings).
    assert doc_table() == variables_table()


def test_every_field_has_its_variable_and_the_smtp_ones_are_those_smtp_reads():
    by_field = {v.field for v in VARIABLES if v.field}
    assert by_field == {f.name for f in fields(Settings)} - {"smtp"}
    smtp_source = (ROOT / "engine" / "delivery" / "smtp.py").read_text()
    read_by_smtp = set(re.findall(r'env(?:\.get\(|\[)"(SMTP_[A-Z_]+)"', smtp_source))
    read_by_smtp |= set(re.findall(r'_parse_bool\(env, "(SMTP_[A-Z_]+)"\)', smtp_source))
    assert read_by_smtp == {v.name for v in VARIABLES if v.field is None}


def test_no_other_module_reads_the_environment():
    readers = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[[^\]]+\](?!\s*=)")
    offenders = []
    for folder in ("engine", "activities", "workflows", "dsl"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "settings.py":
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if readers.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert "os.environ" not in (ROOT / "worker.py").read_text()
    assert offenders == []


def test_defaults_and_a_full_environment():
    assert Settings.from_env({}) == Settings()
    env = {
        "TEMPORAL_ADDRESS": "temporal.internal:7233",
        "TEMPORAL_NAMESPACE": "shop",
        "TEMPORAL_TLS": "yes",
        "SMTP_HOST": "smtp.internal",
        "SMTP_STARTTLS": "true",
        "DATABASE_URL": "postgresql://lifecycle@db/lifecycle",
        "LIFECYCLE_LEDGER_TIMEOUT": "2.5",
        "LIFECYCLE_SEND_LEASE": "90",
        "LIFECYCLE_RENDER_PROCESSES": "3",
        "LIFECYCLE_MAX_CACHED_WORKFLOWS": "50",
        "LIFECYCLE_TEMPORAL_PORT": "7400",
        "LOG_LEVEL": "debug",
        "LIFECYCLE_DATA": " /srv/lifecycle ",
    }
    s = Settings.from_env(env)
    assert s.temporal_target == "temporal.internal:7233"
    assert (s.temporal_namespace, s.temporal_tls) == ("shop", True)
    assert s.smtp == SmtpSettings(host="smtp.internal", port=587, starttls="true")
    assert s.sink_smtp() is s.smtp
    assert (s.ledger_timeout, s.send_lease, s.max_cached_workflows) == (2.5, 90.0, 50)
    assert s.render_limits.processes == 3
    assert (s.log_level, s.data_dir, s.web_ui_port) == ("DEBUG", "/srv/lifecycle", 8400)
    # Without SMTP_HOST: the embedded sink; without TEMPORAL_ADDRESS: the embedded server.
    embedded = Settings.from_env({"LIFECYCLE_SMTP_PORT": "2600", "LIFECYCLE_TEMPORAL_PORT": "7300"})
    assert embedded.smtp is None
    assert embedded.sink_smtp() == SmtpSettings(host="127.0.0.1", port=2600)
    assert embedded.temporal_target == "127.0.0.1:7300"


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"LIFECYCLE_TEMPORAL_PORT": "seven"},
            "LIFECYCLE_TEMPORAL_PORT must be a number, not 'seven'",
        ),
        ({"LIFECYCLE_UI_PORT": "70000"}, "LIFECYCLE_UI_PORT must be a port (1-65535), not '70000'"),
        (
            {"LIFECYCLE_MAX_CACHED_WORKFLOWS": "0"},
            "LIFECYCLE_MAX_CACHED_WORKFLOWS must be positive, not '0'",
        ),
        (
            {"LIFECYCLE_LEDGER_TIMEOUT": "400"},
            "LIFECYCLE_LEDGER_TIMEOUT must be between 0 and 300 seconds, not '400'",
        ),
        ({"LIFECYCLE_SEND_LEASE": "long"}, "LIFECYCLE_SEND_LEASE must be seconds, not 'long'"),
        ({"TEMPORAL_TLS": "maybe"}, "TEMPORAL_TLS must be true or false, not 'maybe'"),
        (
            {"LOG_LEVEL": "loud"},
            "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not 'loud'",
        ),
        (
            {"TEMPORAL_TLS_CERT": "c.pem"},
            "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both or neither",
        ),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert str(err.value) == message


def test_smtp_variables_are_checked_even_without_smtp_host():
    with pytest.raises(SmtpSettingsError, match="SMTP_PORT must be a number, not 'x'"):
        Settings.from_env({"SMTP_PORT": "x"})


def test_one_setting_reads_only_its_own_variable():
    env = {"LIFECYCLE_LEDGER_TIMEOUT": "0.5", "LIFECYCLE_TEMPORAL_PORT": "bad"}
    assert setting("ledger_timeout", env) == 0.5
    assert setting("send_lease", {}) == 120.0
