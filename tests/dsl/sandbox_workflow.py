"""A tiny workflow for tests/dsl/test_evaluator_sandbox.py: evaluates expression trees inside
Temporal's workflow sandbox with ``workflow.now()``.

In: a list of expression trees, a context without ``now``, and a depth: a tree of that many
nested ``not`` is built here and evaluated last (too deep for Temporal's JSON converter to
carry as input). Out: for each tree its value and whether it ran as generated code
(``_expr``) or on the stack machine.

``dsl.evaluator`` is imported normally, not passed through, so the sandbox itself imports
and checks it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from dsl import evaluator


@workflow.defn
class EvaluateExpressionsWorkflow:
    @workflow.run
    async def run(self, trees: list[list], ctx: dict, deep_not: int) -> list[list[Any]]:
        ctx = {**ctx, "now": workflow.now()}
        deep: list = ["lit", False]
        for _ in range(deep_not):
            deep = ["not", deep]
        trees = [*trees, deep]
        return [
            [evaluator.evaluate(tree, ctx), evaluator.compile_expr(tree).__name__] for tree in trees
        ]
