"""`validate` checks each template a step sends against that step's scope: `customer`,
`trigger`, `unsubscribe_url`, `event` only in a received branch, the journey variables
bound earlier on the path, and the step's `with` arguments. Messages pinned in full.

Templates: tests/dsl/fixtures/template_scope/ (a layout, included and imported parts).
"""

from __future__ import annotations

import pytest

from dsl.template_needs import TemplateNeeds
from engine.delivery.message import TemplateRenderError, render_email
from engine.delivery.templates import available_templates, make_environment

from .frontend_support import FIXTURES, rendered
from .frontend_support import compile_steps as shared_compile_steps

TEMPLATES = FIXTURES / "template_scope"


def compile_steps(*steps: str, templates=TEMPLATES):
    """One journey with the given steps (block steps as raw YAML); steps start at line 8."""
    return shared_compile_steps(*steps, templates=templates)


CASES = [
    pytest.param(
        ["- send offer"],
        "r.yaml:8:14: error: template 'offer' uses 'discount', which this step does not provide\n"
        "      - send offer\n"
        "             ^\n"
        "hint: add it: send offer with discount=...",
        id="missing-with-arg",
    ),
    pytest.param(
        ["- send offer with code='X'"],
        "r.yaml:8:14: error: template 'offer' uses 'discount', which this step does not provide\n"
        "      - send offer with code='X'\n"
        "             ^\n"
        "hint: add it: send offer with code=..., discount=...",
        id="missing-with-arg-beside-others",
    ),
    pytest.param(
        ["- notify support with offer"],
        "r.yaml:8:29: error: template 'offer' uses 'discount', which this step does not provide\n"
        "      - notify support with offer\n"
        "                            ^\n"
        "hint: add it: notify support with offer with discount=...",
        id="notify",
    ),
    pytest.param(
        ["- send review-thanks"],
        "r.yaml:8:14: error: template 'review-thanks' uses 'event', "
        "which this step does not provide\n"
        "      - send review-thanks\n"
        "             ^\n"
        "hint: 'event' exists only in a wait for's received: branch",
        id="event-outside-wait-for",
    ),
    pytest.param(
        [
            "- wait for review.posted within 5 days:\n"
            "    received:\n"
            "      - send offer with discount=5\n"
            "    timeout:\n"
            "      - send review-thanks"
        ],
        "r.yaml:12:20: error: template 'review-thanks' uses 'event', "
        "which this step does not provide\n"
        "            - send review-thanks\n"
        "                   ^\n"
        "hint: 'event' exists only in a wait for's received: branch",
        id="event-in-timeout-branch",
    ),
    pytest.param(
        ["- send branded"],
        "r.yaml:8:14: error: template 'branded' uses 'brand' (in layouts/base.html.j2), "
        "which this step does not provide\n"
        "      - send branded\n"
        "             ^\n"
        "hint: add it: send branded with brand=...",
        id="name-used-only-in-the-layout",
    ),
    pytest.param(
        ["- send branded-super with brand='Acme'"],
        "r.yaml:8:14: error: template 'branded-super' uses 'tagline' (in layouts/base.html.j2), "
        "which this step does not provide\n"
        "      - send branded-super with brand='Acme'\n"
        "             ^\n"
        "hint: add it: send branded-super with brand=..., tagline=...",
        id="layout-block-kept-by-super",
    ),
    pytest.param(
        ["- send ticket-update"],
        "r.yaml:8:14: error: template 'ticket-update' uses 'ticket' (in parts/ticket.html.j2), "
        "which this step does not provide\n"
        "      - send ticket-update\n"
        "             ^\n"
        "hint: add it: send ticket-update with ticket=...",
        id="include",
    ),
    pytest.param(
        ["- send signed"],
        "r.yaml:8:14: error: template 'signed' uses 'signer' (in parts/signature.html.j2), "
        "which this step does not provide\n"
        "      - send signed\n"
        "             ^\n"
        "hint: add it: send signed with signer=...",
        id="import-with-context",
    ),
    pytest.param(
        ["- send half-guarded"],
        "r.yaml:8:14: error: template 'half-guarded' uses 'discount', "
        "which this step does not provide\n"
        "      - send half-guarded\n"
        "             ^\n"
        "hint: add it: send half-guarded with discount=...",
        id="guarded-once-but-also-used-bare",
    ),
    pytest.param(
        ["- send set-outside"],
        "r.yaml:8:14: error: template 'set-outside' uses 'greeting', "
        "which this step does not provide\n"
        "      - send set-outside\n"
        "             ^\n"
        "hint: 'greeting' is defined outside the subject block, which is rendered on its own: "
        "define it inside the block",
        id="top-level-set-used-in-the-subject-block",
    ),
    pytest.param(
        [
            "- if customer.vip:\n    - set discount = 20\n  else:\n    - send thanks-note\n",
            "- send offer",
        ],
        "r.yaml:12:14: error: template 'offer' uses 'discount', which this step does not provide\n"
        "      - send offer\n"
        "             ^\n"
        "hint: add it: send offer with discount=...",
        id="variable-bound-on-one-branch-only",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CASES)
def test_message(steps, expected):
    assert rendered(compile_steps(*steps)) == expected


def test_every_missing_name_is_reported_once_per_step():
    result = compile_steps("- send branded", "- send branded")
    assert [(p.line, p.col, p.message) for p in result.problems] == [
        (8, 14, "template 'branded' uses 'brand' (in layouts/base.html.j2), "
                "which this step does not provide"),
        (9, 14, "template 'branded' uses 'brand' (in layouts/base.html.j2), "
                "which this step does not provide"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(["- send offer with discount=10"], id="with-arg"),
        pytest.param(["- set discount = 10", "- send offer"], id="set-variable"),
        pytest.param(
            ["- call create_ticket(priority='low') as ticket", "- send ticket-update"],
            id="call-as-variable-used-by-an-include",
        ),
        pytest.param(
            ["- wait for review.posted within 5 days:\n    received:\n      - send review-thanks"],
            id="event-in-received-branch",
        ),
        pytest.param(["- send branded with brand='Acme'"], id="layout-block-replaced"),
        pytest.param(["- send guarded"], id="default-and-is-defined-guards"),
        pytest.param(["- send locals"], id="names-the-template-defines-and-jinja-globals"),
        pytest.param(["- send signed with signer='Maya'"], id="import-with-context"),
        pytest.param(
            [
                "- if customer.vip:\n    - set discount = 20\n  else:\n    - set discount = 10\n",
                "- send offer",
            ],
            id="variable-bound-on-every-branch",
        ),
    ],
)
def test_clean(steps):
    result = compile_steps(*steps)
    assert rendered(result) == ""


def test_an_unknown_template_reports_only_that():
    result = compile_steps("- send ofer")
    assert [p.message for p in result.problems] == ["unknown template 'ofer'"]


# --------------------------------------------------------------------------- ground truth


class _Anything:
    """A value with every attribute, for rendering with only the names a template needs."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return "x"

    def __str__(self) -> str:
        return "x"


BASE = {"customer": _Anything(), "trigger": _Anything(), "unsubscribe_url": "u"}


@pytest.mark.parametrize("name", available_templates(TEMPLATES))
def test_the_names_found_are_exactly_what_rendering_needs(name):
    """Each template renders with the names the check says it needs, and fails without
    any one of them: the check neither misses a name nor asks for one too many."""
    env = make_environment(TEMPLATES)
    needs = TemplateNeeds(env).of(f"{name}.html.j2")
    context = {var: BASE.get(var, _Anything()) for var in needs}
    render_email(env, name, context)
    for var in needs:
        without = {k: v for k, v in context.items() if k != var}
        with pytest.raises(TemplateRenderError, match=f"'{var}' is undefined"):
            render_email(env, name, without)


def test_each_template_is_analysed_once_per_run(monkeypatch):
    calls = []
    analyse = TemplateNeeds.analyse

    def counting(self, file, overridden):
        calls.append(file)
        return analyse(self, file, overridden)

    monkeypatch.setattr(TemplateNeeds, "analyse", counting)
    result = compile_steps(*["- send branded with brand='A'"] * 50, "- send ticket-update")
    assert len(result.problems) == 1  # ticket
    assert sorted(calls) == [
        "branded.html.j2",
        "layouts/base.html.j2",
        "parts/ticket.html.j2",
        "ticket-update.html.j2",
    ]
