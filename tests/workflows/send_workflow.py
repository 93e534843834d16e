"""A workflow that runs the real ``send_email`` activity exactly as ``CustomerWorkflow`` calls
it (same activity name, same payload shape, retry forever), with its timeouts given as
input so a test can scale them down to seconds instead of waiting for production values."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn(name="SendOnceTestWorkflow")
class SendOnceTestWorkflow:
    @workflow.run
    async def run(self, inp: dict) -> dict:
        return await workflow.execute_activity(
            "send_email",
            inp["payload"],
            start_to_close_timeout=timedelta(seconds=inp["start_to_close"]),
            heartbeat_timeout=timedelta(seconds=inp["heartbeat"]),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=inp.get("initial_interval", 0.2)),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=inp.get("maximum_interval", 1.0)),
                maximum_attempts=0,
                non_retryable_error_types=["TemplateError", "InvalidInput"],
            ),
        )
