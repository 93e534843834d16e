"""A customer's template bomb fails only that customer's journey, on the real worker
(time-skipping server, the real email activity and render pool, a real SMTP sink): another
customer's email is delivered while the bomb is still rendering (issue 7, case 1)."""

from __future__ import annotations

import uuid

from engine.delivery.render_pool import shared_pool
from engine.delivery.smtp import SmtpSettings
from engine.runtime.assembly import assemble
from engine.runtime.client import send_event
from engine.runtime.config import customer_workflow_id
from engine.tools.simulator import start_environment
from engine.tools.smtp_sink import SmtpSink
from tests.workflows.harness import compile_store, until, write_templates

RULES = """
journeys:
  bombed:
    trigger: bomb.armed
    steps:
      - send bomb
  welcome:
    trigger: customer.signed_up
    steps:
      - send welcome
"""
BOMB = (
    "{% block subject %}Boom{% endblock %}\n"
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
)


def event(type_: str, customer_id: str) -> dict:
    customer = {"name": customer_id, "email": f"{customer_id}@example.test"}
    return {"type": type_, "customer_id": customer_id, "customer": customer, "data": {}}


async def test_a_bomb_template_fails_its_journey_while_other_email_flows(tmp_path, monkeypatch):
    # 3 s: long enough for the other customer's email (well under a second) to go out
    # while the bomb renders; validate would refuse the bomb, so the store skips it.
    monkeypatch.setenv("LIFECYCLE_RENDER_TIMEOUT", "3")
    monkeypatch.setenv("LIFECYCLE_RENDER_PROCESSES", "2")
    templates = write_templates(tmp_path / "templates", ["welcome"], {"bomb": "Boom"})
    store = compile_store(RULES, templates)
    (templates / "bomb.html.j2").write_text(BOMB)  # rendered from the folder (no snapshot)
    store.templates = None

    env = await start_environment()
    sink = SmtpSink().start()
    smtp = SmtpSettings(host="127.0.0.1", port=sink.port)
    queue = f"q-{uuid.uuid4().hex[:6]}"
    try:
        async with assemble(
            env.client, store, smtp, tmp_path / "ledger.sqlite", queue, templates_dir=templates
        ):
            bomber = env.client.get_workflow_handle(customer_workflow_id("c-bomb"))
            await send_event(env.client, event("bomb.armed", "c-bomb"), task_queue=queue)

            async def bomb_rendering():  # the journey is at its send, not yet ended
                try:
                    active = (await bomber.query("status"))["active"]
                except Exception:
                    return False  # not started yet
                return [a["doing"].split()[0] for a in active] == ["send"]

            await until(bomb_rendering)
            await send_event(env.client, event("customer.signed_up", "c-ok"), task_queue=queue)

            async def delivered():
                return len(sink.messages) == 1

            await until(delivered)
            # The other customer's email went out while the bomb was still rendering.
            assert await bomb_rendering()
            assert sink.messages[0].rcpt_tos == ["c-ok@example.test"]

            async def bomb_ended():
                journal = (await bomber.query("status"))["journal"]
                return any(e.get("action") == "end" for e in journal)

            await until(bomb_ended)
            journal = (await bomber.query("status"))["journal"]
            (end,) = [e for e in journal if e.get("action") == "end"]
            assert end["reason"] == "failed"
            assert end["error_type"] == "TemplateError"
            assert end["error"] == (
                "TemplateError: bomb.html.j2:2: rendering took longer than 3 s "
                "(LIFECYCLE_RENDER_TIMEOUT)"
            )
            assert [m.rcpt_tos for m in sink.messages] == [["c-ok@example.test"]]
    finally:
        sink.stop()
        await env.shutdown()
        shared_pool().close()
