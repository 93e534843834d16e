"""schema: (CONTRACT.md §7): validate's messages for each schema error, pinned in full,
and the event check every way in uses (send-event, the HTTP API)."""

from __future__ import annotations

import json

import pytest

from dsl.compiler import compile_text
from dsl.ir import Schema
from dsl.schema import ERROR, WARNING, Problem, check_event, load_schema
from engine.cli import ExitCode, main

SCHEMA = """
schema:
  customer: {email: email, name: text, birthday: date, lifetime_value: number, tags: list}
  events:
    order.placed: {order_id: text, total: number}
"""


def rendered(yaml_text: str, tmp_path, templates: dict[str, str] | None = None) -> str:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in (templates or {"t": "{% block subject %}Hi{% endblock %}"}).items():
        (folder / f"{name}.html.j2").write_text(text)
    result = compile_text(SCHEMA + yaml_text, "r.yaml", folder)
    return "\n".join(p.render() for p in result.problems).replace(str(folder), "T")


def test_a_misspelt_customer_field_in_a_rule_is_an_error_with_a_did_you_mean(tmp_path):
    assert rendered(
        """
journeys:
  j:
    trigger: order.placed
    when: customer.nmae == "Ann"
    steps:
      - send t
""",
        tmp_path,
    ) == (
        "r.yaml:10:20: error: unknown customer field 'nmae'\n"
        '    when: customer.nmae == "Ann"\n'
        "                   ^\n"
        "hint: did you mean 'name'?"
    )


def test_a_misspelt_customer_field_in_a_template_is_an_error_with_a_did_you_mean(tmp_path):
    template = "{% block subject %}Hi{% endblock %}\n<p>Dear {{ customer.nmae }}</p>\n"
    assert rendered(
        """
journeys:
  j:
    trigger: order.placed
    steps:
      - send t
""",
        tmp_path,
        {"t": template},
    ) == (
        "T/t.html.j2:2:12: error: unknown customer field 'nmae'\n"
        "<p>Dear {{ customer.nmae }}</p>\n"
        "           ^\n"
        "hint: did you mean 'name'?; used by r.yaml:11:9"
    )


def test_setting_an_undeclared_customer_field(tmp_path):
    assert rendered(
        """
journeys:
  j:
    trigger: order.placed
    steps:
      - set customer.lifetime_valu = 3
""",
        tmp_path,
    ) == (
        "r.yaml:11:22: error: unknown customer field 'lifetime_valu'\n"
        "      - set customer.lifetime_valu = 3\n"
        "                     ^\n"
        "hint: did you mean 'lifetime_value'?"
    )


def test_a_trigger_field_the_event_does_not_declare(tmp_path):
    assert rendered(
        """
journeys:
  j:
    trigger: order.placed
    steps:
      - if trigger.totl > 50:
          - send t
""",
        tmp_path,
    ) == (
        "r.yaml:11:20: error: 'trigger.totl' is not a field of the event 'order.placed'\n"
        "      - if trigger.totl > 50:\n"
        "                   ^\n"
        "hint: did you mean 'total'?"
    )


def test_a_type_clash_with_a_declared_field(tmp_path):
    assert rendered(
        """
journeys:
  j:
    trigger: order.placed
    exit_when: customer.lifetime_value > "500"
    steps:
      - send t
""",
        tmp_path,
    ) == (
        "r.yaml:10:40: error: '>' cannot compare a number with a string\n"
        '    exit_when: customer.lifetime_value > "500"\n'
        "                                       ^"
    )


def test_a_date_trigger_on_a_field_that_is_not_a_date(tmp_path):
    assert rendered(
        """
journeys:
  j:
    trigger: every year on customer.name
    steps:
      - send t
""",
        tmp_path,
    ) == (
        "r.yaml:9:37: error: a date trigger needs a date or datetime field; customer.name is "
        "declared as text\n"
        "    trigger: every year on customer.name\n"
        "                                    ^\n"
        "hint: declare it as date (YYYY-MM-DD or MM-DD) or datetime"
    )


def test_an_unknown_field_type(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    result = compile_text(
        """
schema:
  customer: {name: txt}
  events:
    a.b: {total: number}
    c.d:
""",
        "r.yaml",
        folder,
    )
    assert "\n".join(p.render() for p in result.problems) == (
        "r.yaml:3:20: error: unknown field type 'txt'\n"
        "  customer: {name: txt}\n"
        "                   ^\n"
        "hint: did you mean 'text'?"
    )


def test_a_field_declared_twice_with_different_types(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text("schema:\n  customer: {birthday: date}\n")
    (tmp_path / "rules" / "b.yaml").write_text("schema:\n  customer: {birthday: text}\n")
    from dsl.compiler import compile_rules

    result = compile_rules(tmp_path / "rules", folder)
    rules = str(tmp_path / "rules")
    assert "\n".join(p.render() for p in result.problems).replace(rules, "R") == (
        "R/b.yaml:2:24: error: customer field 'birthday' is declared as date "
        "(at R/a.yaml:2:24) and as text\n"
        "  customer: {birthday: text}\n"
        "                       ^\n"
        "hint: declare each field once, with one type"
    )


def test_without_a_schema_nothing_is_checked(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.html.j2").write_text("{% block subject %}{{ customer.nmae }}{% endblock %}")
    result = compile_text(
        "journeys:\n  j:\n    trigger: a.b\n    when: customer.nmae\n    steps:\n      - send t\n",
        "r.yaml",
        folder,
    )
    assert result.problems == []


# --------------------------------------------------------------------------- events

EVENT_SCHEMA = Schema(
    customer={"email": "email", "birthday": "date", "timezone": "timezone", "vip": "bool"},
    events={"order.placed": {"total": "number", "lines": "list"}},
)


def test_check_event_names_each_bad_field_by_its_path():
    event = {
        "type": "order.placed",
        "customer_id": "c",
        "customer": {
            "email": "not-an-address",
            "birthday": "1990-02-30",
            "timezone": "Mars/Olympus",
            "vip": "yes",
            "nmae": "Ann",
        },
        "data": {"total": "40.5", "lines": None, "coupon": "X"},
    }
    assert [str(p) for p in check_event(EVENT_SCHEMA, event)] == [
        'error: customer.birthday: must be a date ("1990-04-20", or "04-20" for a yearly '
        "date), not '1990-02-30'",
        'error: customer.email: must be an email address ("ann@example.test"), not '
        "'not-an-address'",
        'error: customer.timezone: must be an IANA time zone ("Europe/Berlin"), not '
        "'Mars/Olympus'",
        "error: customer.vip: must be true or false, not 'yes'",
        "error: data.total: must be a number, not '40.5'",
        "warning: customer.nmae: not a declared field",
        "warning: data.coupon: not a declared field",
    ]


def test_strict_makes_an_undeclared_field_an_error_and_good_events_pass():
    strict = Schema(customer={"name": "text"}, events={}, strict=True)
    event = {"type": "x", "customer_id": "c", "customer": {"nmae": "Ann"}, "data": {"y": 1}}
    assert check_event(strict, event) == [
        Problem("customer.nmae", "not a declared field; did you mean 'name'?", ERROR)
    ]
    good = {"type": "order.placed", "customer_id": "c", "customer": {"birthday": "04-20"}}
    good["data"] = {"total": 3, "lines": []}
    assert check_event(EVENT_SCHEMA, good) == []
    assert check_event(None, event) == []
    assert WARNING == "warning"


@pytest.fixture
def rules_with_schema(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "schema.yaml").write_text(SCHEMA)
    return rules


def test_load_schema_reads_the_rules_folder(rules_with_schema):
    schema = load_schema(rules_with_schema)
    assert schema.customer["birthday"] == "date"
    assert schema.events == {"order.placed": {"order_id": "text", "total": "number"}}


def test_send_event_refuses_an_event_whose_declared_field_has_the_wrong_type(
    rules_with_schema, tmp_path, capsys
):
    events = tmp_path / "events.jsonl"
    bad = {"type": "order.placed", "customer_id": "c", "data": {"total": "40"}}
    unknown = {"type": "order.placed", "customer_id": "c", "customer": {"nmae": "A"}}
    events.write_text(json.dumps(unknown) + "\n" + json.dumps(bad) + "\n")
    # No Temporal on this address: had it tried to send, it would fail with FAILURE.
    code = main(
        ["send-event", str(events), "--rules", str(rules_with_schema), "--address", "127.0.0.1:1"]
    )
    assert code == ExitCode.PROBLEMS
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{events}:1: warning: customer.nmae: not a declared field; did you mean 'name'?",
        f"{events}:2: error: data.total: must be a number, not '40'",
        "1 bad event(s); nothing was sent",
    ]


def test_an_event_field_the_awaited_event_does_not_declare(tmp_path):
    assert rendered(
        """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - wait for order.placed where event.totl > 10 within 3 days:
          received:
            - if event.order_id == "o-1":
                - send t
""",
        tmp_path,
    ) == (
        "r.yaml:11:43: error: 'event.totl' is not a field of the event 'order.placed'\n"
        "      - wait for order.placed where event.totl > 10 within 3 days:\n"
        "                                          ^\n"
        "hint: did you mean 'total'?"
    )


def test_event_fields_of_an_undeclared_event_and_type_clashes(tmp_path):
    # cart.abandoned is not declared: anything goes; order.placed's total is a number.
    assert rendered(
        """
journeys:
  j:
    trigger: customer.signed_up
    steps:
      - wait for cart.abandoned where event.anything == 1 within 1 day:
          received:
            - wait for order.placed within 3 days:
                received:
                  - if event.total > "big":
                      - send t
""",
        tmp_path,
    ) == (
        "r.yaml:15:36: error: '>' cannot compare a number with a string\n"
        '                  - if event.total > "big":\n'
        "                                   ^"
    )
