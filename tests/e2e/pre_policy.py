"""The customer workflow as it was before the contact policy (no ``contact-policy-v1``
marker, a plan store whose answers do not say it applies the policy): what a customer in
flight at the deploy was started by (tests/e2e/test_contact_policy.py)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.customer import CustomerWorkflow
    from workflows.state import CustomerInput


@workflow.defn(name="CustomerWorkflow", sandboxed=False)
class PrePolicyWorkflow(CustomerWorkflow):
    @workflow.init
    def __init__(self, inp: CustomerInput) -> None:
        CustomerWorkflow.__init__(self, inp)

    @workflow.run
    async def run(self, inp: CustomerInput) -> None:
        await CustomerWorkflow.run(self, inp)

    def _contact_policy_patched(self) -> bool:
        return False
