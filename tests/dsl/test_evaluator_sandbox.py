"""dsl.evaluator inside a real Temporal workflow sandbox, on the time-skipping test server."""

from __future__ import annotations

import re
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from engine.runtime.config import binary_path
from tests.dsl.sandbox_workflow import EvaluateExpressionsWorkflow


async def test_evaluator_runs_in_the_workflow_sandbox():
    signed_up = ["path", "customer", ["signed_up_at"]]
    trees = [
        ["call", "now", []],
        # workflow.now() is the server's (current) time: sign-up in 2001 is > 9,000 days ago
        ["cmp", ">", ["call", "days_since", [signed_up]], ["lit", 9000]],
        [
            "and",
            ["path", "customer", ["marketing_opt_in"]],
            [
                "cmp",
                "in",
                ["path", "customer", ["country"]],
                ["list", [["lit", "DE"], ["lit", "FR"]]],
            ],
        ],
        ["arith", "/", ["path", "customer", ["missing"]], ["lit", 0]],
    ]
    ctx = {
        "customer": {
            "signed_up_at": "2001-01-01T00:00:00Z",
            "marketing_opt_in": True,
            "country": "FR",
        }
    }
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary_path("temporal-test-server")
    ) as env:
        queue = f"evaluator-sandbox-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[EvaluateExpressionsWorkflow]):
            results = await env.client.execute_workflow(
                EvaluateExpressionsWorkflow.run,
                args=[trees, ctx, 1001],
                id=f"evaluate-{uuid.uuid4()}",
                task_queue=queue,
            )
    (now, now_kind), *rest = results
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now) and now_kind == "_expr"
    assert rest == [[True, "_expr"], [True, "_expr"], [None, "_expr"], [True, "fallback"]]
