"""Rendering is bounded in time and memory and runs off the worker's event loop: template
bombs and sandbox escapes fail with the template's file and line, in render processes
(engine.delivery.render_pool), and the email activity turns them into a non-retryable TemplateError.
Limits are small here (LIFECYCLE_RENDER_TIMEOUT / _MEMORY_MB) so the tests stay fast."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from jinja2.sandbox import SecurityError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from engine.delivery.email_activity import EmailActivities, SendEmailInput
from engine.delivery.ledger import open_ledger
from engine.delivery.message import TemplateRenderError, render_email
from engine.delivery.render_pool import RenderLimits, RenderPool, SampleValue, shared_pool
from engine.delivery.templates import TemplateSet, make_environment

BOMBS = Path(__file__).parent / "bomb_templates"
ANN = {"customer": {"name": "Ann", "email": "ann@example.test"}, "trigger": {}}


@pytest.fixture(scope="module")
def pool():
    pool = RenderPool(RenderLimits(timeout=0.5, memory_mb=256, processes=2))
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def bombs() -> TemplateSet:
    return TemplateSet.read(BOMBS)


def failure(pool, bombs, name) -> TemplateRenderError:
    with pytest.raises(TemplateRenderError) as err:
        pool.render(bombs, name, ANN)
    return err.value


def test_nested_loop_bomb_stops_at_the_time_limit_with_its_line(pool, bombs):
    err = failure(pool, bombs, "nested-loops")
    assert str(err) == (
        "nested-loops.html.j2:3: rendering took longer than 0.5 s (LIFECYCLE_RENDER_TIMEOUT)"
    )
    assert (err.template, err.line, err.reason) == ("nested-loops.html.j2", 3, "limit")


def test_string_repetition_bomb_is_refused_by_the_sandbox_before_allocating(pool, bombs):
    err = failure(pool, bombs, "repeat")
    assert str(err) == (
        "repeat.html.j2:2: '*' would repeat a value of length 1 1000000000 times; "
        "the limit is 1,000,000 items"
    )
    assert err.reason == "security"


def test_huge_power_is_refused_by_the_sandbox(pool, bombs):
    err = failure(pool, bombs, "power")
    assert str(err) == (
        "power.html.j2:2: '**' would make a number of about 301,029 digits; the limit is 1,000"
    )


def test_repetition_is_refused_in_process_too():
    # The intercept is in the environment itself: preview and validate get it as well.
    env = make_environment(BOMBS)
    with pytest.raises(TemplateRenderError) as err:
        render_email(env, "repeat", ANN)
    assert err.value.reason == "security"
    with pytest.raises(SecurityError):
        env.from_string("{{ [1, 2] * 600000 }}").render()
    assert env.from_string("{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ 3 * 4 }}").render() == "ababab 1024 12"


def test_sandbox_escape_names_the_line(pool, bombs):
    err = failure(pool, bombs, "escape")
    assert (
        str(err) == "escape.html.j2:2: access to attribute '__class__' of 'str' object is unsafe."
    )
    assert err.reason == "security"


def test_memory_bomb_stops_at_the_memory_limit(bombs):
    # A time limit far above what filling 256 MB takes, so that on a loaded machine the
    # memory limit, not the clock, stops it (with 0.5 s the clock sometimes won).
    roomy = RenderPool(RenderLimits(timeout=20, memory_mb=256, processes=1))
    try:
        err = failure(roomy, bombs, "memory")
    finally:
        roomy.close()
    assert str(err) == (
        "memory.html.j2:3: rendering needs more memory than a render may use "
        "(LIFECYCLE_RENDER_MEMORY_MB)"
    )


def test_the_pool_keeps_rendering_after_bombs(pool, bombs):
    for name in ("nested-loops", "memory", "bigint"):
        with pytest.raises(TemplateRenderError):
            pool.render(bombs, name, ANN)
    assert pool.render(bombs, "welcome", ANN).subject == "Hello Ann"


async def test_a_bomb_does_not_hold_the_event_loop_or_another_render(pool, bombs):
    order: list[str] = []

    async def render(name):
        try:
            await pool.render_async(bombs, name, ANN)
            order.append(f"{name} ok")
        except TemplateRenderError:
            order.append(f"{name} failed")

    async def ticks():
        for _ in range(3):
            await asyncio.sleep(0.01)
        order.append("loop ran")

    bomb = asyncio.create_task(render("nested-loops"))
    await asyncio.sleep(0.05)  # the bomb is in its render process
    await asyncio.gather(render("welcome"), ticks())
    assert not bomb.done()
    await bomb
    assert order[-1] == "nested-loops failed"
    assert sorted(order[:-1]) == ["loop ran", "welcome ok"]


async def test_cancelling_a_render_stops_it_and_the_pool_goes_on(pool, bombs):
    task = asyncio.create_task(pool.render_async(bombs, "nested-loops", ANN))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await pool.render_async(bombs, "welcome", ANN)).subject == "Hello Ann"


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_RENDER_TIMEOUT", "2.5")
    monkeypatch.setenv("LIFECYCLE_RENDER_MEMORY_MB", "300")
    monkeypatch.setenv("LIFECYCLE_RENDER_PROCESSES", "3")
    assert RenderLimits.from_env() == RenderLimits(timeout=2.5, memory_mb=300, processes=3)
    monkeypatch.setenv("LIFECYCLE_RENDER_TIMEOUT", "soon")
    with pytest.raises(ValueError) as err:
        RenderLimits.from_env()
    assert str(err.value) == "LIFECYCLE_RENDER_TIMEOUT must be a number, not 'soon'"
    monkeypatch.setenv("LIFECYCLE_RENDER_TIMEOUT", "0")
    with pytest.raises(ValueError) as err:
        RenderLimits.from_env()
    assert str(err.value) == "LIFECYCLE_RENDER_TIMEOUT must be positive, not '0'"


async def test_email_activity_fails_a_bomb_non_retryably_and_sends_nothing(
    tmp_path, smtp_settings, sink, monkeypatch
):
    monkeypatch.setenv("LIFECYCLE_RENDER_TIMEOUT", "0.5")
    ledger = await open_ledger(None, tmp_path / "ledger.sqlite")
    acts = EmailActivities(BOMBS, smtp_settings, ledger)
    try:
        inp = SendEmailInput(
            idempotency_key="wf-1/step-0",
            kind="send",
            template="nested-loops",
            to="ann@example.test",
            sender="Acme <hello@acme.test>",
            customer_id="c-1",
            journey="j",
            context=ANN,
        )
        with pytest.raises(ApplicationError) as err:
            await ActivityEnvironment().run(acts.send_email, inp)
        assert err.value.type == "TemplateError" and err.value.non_retryable is True
        assert err.value.message == (
            "nested-loops.html.j2:3: rendering took longer than 0.5 s (LIFECYCLE_RENDER_TIMEOUT)"
        )
        assert err.value.details == (
            {
                "template": "nested-loops.html.j2",
                "line": 3,
                "message": "rendering took longer than 0.5 s (LIFECYCLE_RENDER_TIMEOUT)",
                "reason": "limit",
            },
        )
        inp.template, inp.idempotency_key = "welcome", "wf-1/step-1"
        result = await ActivityEnvironment().run(acts.send_email, inp)
        assert result.status == "sent" and len(sink.messages) == 1
    finally:
        await acts.close()
        shared_pool().close()


def test_a_sample_value_passes_for_text_number_list_and_mapping():
    env = make_environment(BOMBS)
    out = env.from_string(
        "{{ c.name | upper }} {{ c.total | round(2) }} {{ '%.1f' | format(c.total) }} "
        "{% for t in c.tags %}[{{ t.label }}]{% endfor %} {{ c.n + 1 > 2 }} {{ c.items | length }}"
    ).render(c=SampleValue("c"))
    assert out == "C.NAME 1.0 1.0 [c.tags[0].label] False 1"
    with pytest.raises(SecurityError):
        env.from_string("{{ c.__class__.__mro__ }}").render(c=SampleValue("c"))


CLOSE_RIGHT_AFTER_A_RENDER = """
import sys

def main():
    from pathlib import Path
    from engine.delivery.render_pool import close_shared, shared_pool
    from engine.delivery.templates import TemplateSet

    pool = shared_pool()
    pool.render(TemplateSet.read(Path(sys.argv[1])), "welcome", {"customer": {"name": "A"}})
    close_shared()  # as a command does at its end, while the second process may be starting

if __name__ == "__main__":
    main()
"""


def test_closing_the_pool_while_a_process_starts_prints_nothing(tmp_path):
    """Pebble unlinks its channels' semaphore before stopping its processes; one still
    starting up then died printing a SemLock traceback into the command's stderr (about 1
    run in 8 on these machines). The pool now stops its processes first."""
    import os
    import subprocess
    import sys

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "welcome.html.j2").write_text(
        "{% block subject %}Hi {{ customer.name }}{% endblock %}"
        "{% block html %}<p>Hi</p>{% endblock %}"
    )
    script = tmp_path / "close_right_after.py"
    script.write_text(CLOSE_RIGHT_AFTER_A_RENDER)
    env = {**os.environ, "LIFECYCLE_RENDER_PROCESSES": "2"}
    root = Path(__file__).resolve().parents[2]
    for _ in range(20):
        done = subprocess.run(
            [sys.executable, str(script), str(templates)],
            cwd=root, env={**env, "PYTHONPATH": str(root)}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
