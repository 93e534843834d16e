from datetime import UTC, datetime, timedelta
from pathlib import Path

from dsl.ir import If, Send, Wait, WaitFor
from engine.runtime import PlanStore
from engine.simulator import simulate
from tests.workflows.harness import O, expr, journey, lit, path, plan

T = Path(__file__).parent / "templates"


async def test_welcome_scratch():
    j = journey(
        "welcome",
        "customer.signed_up",
        [
            Send(O, "welcome"),
            Wait(O, 2 * 86400),
            If(
                O,
                expr(["cmp", "==", path("customer", "orders_count"), lit(0)]),
                [Send(O, "nudge")],
                [Send(O, "thanks")],
            ),
            WaitFor(
                O,
                "review.posted",
                5 * 86400,
                None,
                [Send(O, "review-thanks")],
                [Send(O, "review-reminder")],
            ),
        ],
    )
    store = PlanStore.from_plan(plan(j), registry={})
    start = datetime(2030, 1, 1, tzinfo=UTC)
    events = [
        (
            start,
            {
                "id": "e1",
                "type": "customer.signed_up",
                "customer_id": "c1",
                "customer": {"name": "Ann", "email": "ann@x.test", "orders_count": 0},
                "data": {},
            },
        ),
        (
            start + timedelta(days=3),
            {"type": "review.posted", "customer_id": "c1", "customer": {}, "data": {}},
        ),
    ]
    res = await simulate(events, None, T, start, store=store)
    for a in res.public_actions():
        print(a)
    assert [a["template"] for a in res.public_actions() if a["action"] == "send"] == [
        "welcome",
        "nudge",
        "review-thanks",
    ]
