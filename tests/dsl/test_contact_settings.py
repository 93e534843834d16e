"""The contact policy's settings and keys (CONTRACT.md §6) in `validate`: every message
pinned in full, all problems reported at once, and what a valid file compiles to."""

from __future__ import annotations

import pytest

from dsl.compiler import compile_text
from dsl.contact import parse_frequency_cap, parse_quiet_hours

from .frontend_support import TEMPLATES, compile_steps, rendered, renderer


def compile_rules(text: str):
    return compile_text(text, "r.yaml", TEMPLATES, {}, renderer())


def settings_file(**values: str) -> str:
    lines = ["settings:"] + [f"  {k}: {v}" for k, v in values.items()]
    lines += [
        "journeys:",
        "  j:",
        "    trigger: order.placed",
        "    steps:",
        "      - send welcome",
    ]
    return "\n".join(lines) + "\n"


SETTING_CASES = [
    (
        {"timezone": "Europe/Berln"},
        "r.yaml:2:13: error: unknown time zone 'Europe/Berln'\n"
        "  timezone: Europe/Berln\n"
        "            ^\n"
        "hint: did you mean 'Europe/Berlin'?",
    ),
    (
        {"timezone": "Nowhere"},
        "r.yaml:2:13: error: unknown time zone 'Nowhere'\n"
        "  timezone: Nowhere\n"
        "            ^\n"
        "hint: use an IANA name such as Europe/Berlin or America/New_York",
    ),
    (
        {"quiet_hours": '"21:00-8:60"'},
        "r.yaml:2:23: error: '8:60' is not a time of day: hours run 00-23, minutes 00-59\n"
        '  quiet_hours: "21:00-8:60"\n'
        "                      ^\n"
        "hint: write HH:MM, e.g. 08:00 or 21:30",
    ),
    (
        {"quiet_hours": '"9pm-8am"'},
        "r.yaml:2:17: error: '9pm' is not a time of day\n"
        '  quiet_hours: "9pm-8am"\n'
        "                ^\n"
        "hint: write HH:MM, e.g. 08:00 or 21:30",
    ),
    (
        {"quiet_hours": '"21:00"'},
        "r.yaml:2:17: error: quiet hours '21:00' need a start and an end\n"
        '  quiet_hours: "21:00"\n'
        "                ^\n"
        'hint: write "START-END" in local time, e.g. "21:00-08:00"',
    ),
    (
        {"quiet_hours": '"08:00-08:00"'},
        "r.yaml:2:17: error: quiet hours cannot start and end at the same time\n"
        '  quiet_hours: "08:00-08:00"\n'
        "                ^\n"
        "hint: leave quiet_hours out for none",
    ),
    (
        {"frequency_cap": '"0 per 7 days"'},
        "r.yaml:2:19: error: a frequency cap must allow at least 1 email\n"
        '  frequency_cap: "0 per 7 days"\n'
        "                  ^\n"
        "hint: to send no marketing email, leave the journeys out; for no cap, leave "
        "frequency_cap out",
    ),
    (
        {"frequency_cap": '"3 per fortnight"'},
        "r.yaml:2:25: error: unknown time unit 'fortnight'\n"
        '  frequency_cap: "3 per fortnight"\n'
        "                        ^\n"
        "hint: units: minutes, hours, days, weeks",
    ),
    (
        {"frequency_cap": '"3 a week"'},
        "r.yaml:2:19: error: frequency cap '3 a week' is not 'N per DURATION'\n"
        '  frequency_cap: "3 a week"\n'
        "                  ^\n"
        'hint: write "N per DURATION", e.g. "3 per 7 days" or "1 per day"',
    ),
    (
        {"frequency_cap": '"3 per 100 days"'},
        "r.yaml:2:25: error: a frequency cap's window must be longer than zero and at most 90 days\n"
        '  frequency_cap: "3 per 100 days"\n'
        "                        ^",
    ),
    (
        {"consent": "customer.opt_in =="},
        "r.yaml:2:30: error: expected an expression after '=='\n"
        "  consent: customer.opt_in ==\n"
        "                             ^",
    ),
]


@pytest.mark.parametrize(("values", "expected"), SETTING_CASES)
def test_bad_contact_settings(values, expected):
    assert rendered(compile_rules(settings_file(**values))) == expected


JOURNEY_CASES = [
    (
        "    class: promo",
        "r.yaml:7:12: error: unknown message class 'promo'\n"
        "    class: promo\n"
        "           ^\n"
        "hint: use marketing (the default) or transactional",
    ),
    (
        "    when_capped: drop",
        "r.yaml:7:18: error: unknown when_capped 'drop'\n"
        "    when_capped: drop\n"
        "                 ^\n"
        "hint: use wait (the default: send once the cap allows) or skip",
    ),
    (
        "    class: transactional\n    when_capped: skip",
        "r.yaml:8:18: error: when_capped has no effect on a transactional journey\n"
        "    when_capped: skip\n"
        "                 ^\n"
        "hint: transactional email is never capped: remove when_capped, or make the journey "
        "marketing",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), JOURNEY_CASES)
def test_bad_journey_keys(extra, expected):
    assert rendered(compile_steps("- send welcome", extra=extra)) == expected


STEP_CASES = [
    (
        "- wait until 25:00",
        "r.yaml:8:20: error: '25:00' is not a time of day: hours run 00-23, minutes 00-59\n"
        "      - wait until 25:00\n"
        "                   ^\n"
        "hint: write HH:MM, e.g. 08:00 or 21:30",
    ),
    (
        "- wait until 9:5",
        "r.yaml:8:20: error: '9:5' is not a time of day\n"
        "      - wait until 9:5\n"
        "                   ^\n"
        "hint: write HH:MM, e.g. 08:00 or 21:30",
    ),
    (
        "- wait until 5 + 2",
        "r.yaml:8:20: error: wait until needs a time, not a number\n"
        "      - wait until 5 + 2\n"
        "                   ^\n"
        "hint: give an ISO 8601 time (e.g. customer.renewal_at), or HH:MM for a time of day",
    ),
    (
        "- wait until customer.renewl_at ==",
        "r.yaml:8:41: error: expected an expression after '=='\n"
        "      - wait until customer.renewl_at ==\n"
        "                                        ^",
    ),
]


@pytest.mark.parametrize(("step", "expected"), STEP_CASES)
def test_bad_wait_until(step, expected):
    assert rendered(compile_steps(step)) == expected


def test_every_problem_is_reported_at_once():
    text = settings_file(timezone="Mars/Base", frequency_cap='"0 per day"').replace(
        "      - send welcome", "      - wait until 24:00\n      - send welcome"
    )
    result = compile_rules(text)
    assert [(p.line, p.message.split(":")[0]) for p in result.problems] == [
        (2, "unknown time zone 'Mars/Base'"),
        (3, "a frequency cap must allow at least 1 email"),
        (8, "'24"),
    ]


def test_a_valid_policy_compiles_into_the_plan():
    text = settings_file(
        timezone="Europe/Berlin",
        quiet_hours='"21:00-08:00"',
        frequency_cap='"3 per week"',
        consent="customer.marketing_opt_in",
    ).replace("    steps:", "    class: transactional\n    steps:\n      - wait until 09:30")
    result = compile_rules(text)
    assert not result.problems, rendered(result)
    s = result.plan.settings
    assert (s.timezone, s.quiet_hours, s.frequency_cap) == (
        "Europe/Berlin",
        [1260, 480],
        [3, 604800],
    )
    assert s.consent.src == "customer.marketing_opt_in"
    journey = result.plan.journeys["j"]
    assert (journey.message_class, journey.when_capped) == ("transactional", "wait")
    assert (journey.steps[0].kind, journey.steps[0].minutes) == ("wait_until", 570)


def test_a_journey_without_the_new_keys_keeps_its_hash():
    plain = compile_steps("- send welcome").plan.journeys["j"]
    marketing = compile_steps("- send welcome", extra="    class: marketing").plan.journeys["j"]
    transactional = compile_steps("- send welcome", extra="    class: transactional")
    assert plain.hash == marketing.hash  # the default is left out of the hash
    assert plain.hash != transactional.plan.journeys["j"].hash


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 per 7 days", (3, 604800)),
        ("3 per week", (3, 604800)),
        ("1 per day", (1, 86400)),
        ("10 per 36h", (10, 129600)),
    ],
)
def test_frequency_cap_texts(text, expected):
    assert parse_frequency_cap(text) == expected


def test_quiet_hours_texts():
    assert parse_quiet_hours("21:00-08:00") == (1260, 480)
    assert parse_quiet_hours("12:00 - 14:30") == (720, 870)
