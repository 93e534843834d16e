"""The contact policy on the real Temporal dev server (CONTRACT.md §6): a send held by
quiet hours shows in `lifecycle status` as waiting, until when and why, and an unsubscribe
event sent while it is held stops it (the journey goes on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.cli.status import format_status
from tests.e2e.conftest import event, in_process_worker, new_customer, status, wait_end, wait_until
from tests.workflows.harness import compile_store, write_templates

RULES = """
settings:
  timezone: "UTC"
  quiet_hours: "{start}-{end}"
journeys:
  promo:
    trigger: customer.signed_up
    steps:
      - send promo
      - send promo-2
"""


async def test_an_unsubscribe_while_a_send_is_deferred_stops_it(client, sink, tmp_path):
    # Quiet hours around the real time now, so the first send is held for ~2 hours.
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    rules = RULES.format(start=f"{start:%H:%M}", end=f"{end:%H:%M}")
    templates = write_templates(tmp_path / "templates", ["promo", "promo-2"])
    store = compile_store(rules, templates)
    cid = new_customer()
    async with in_process_worker(client, store, sink.port, tmp_path) as send:
        await send(event("customer.signed_up", cid, {"name": "Ann", "email": "ann@x.test"}))

        async def deferred():
            st = await status(client, cid)
            waits = [a.get("waiting") for a in st["active"]]
            return st if waits and waits[0] and waits[0]["kind"] == "defer" else None

        st = await wait_until(deferred, 30, "the send to be held by quiet hours")
        wait = st["active"][0]["waiting"]
        assert wait["reason"] == "quiet_hours"
        assert wait["detail"] == f"quiet hours until {end:%H:%M} UTC"
        text = format_status(st)
        assert (
            f"  promo: send waiting until {wait['deadline']}: quiet hours until {end:%H:%M} UTC ("
            in text
        )
        assert " defer   promo until " in text  # the journal line

        await send(event("customer.unsubscribed", cid))
        st = await wait_end(client, cid, "promo")
    lines = [
        (j["action"], j.get("template"), j.get("status"), j.get("reason")) for j in st["journal"]
    ]
    assert lines == [
        ("start", None, None, None),
        ("defer", "promo", None, "quiet_hours"),
        ("send", "promo", "suppressed", "unsubscribed"),
        ("send", "promo-2", "suppressed", "unsubscribed"),
        ("end", None, None, "completed"),
    ]
    assert st["profile"]["unsubscribed"] is True
    assert sink.messages == []
