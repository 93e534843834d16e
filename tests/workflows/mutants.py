"""Deliberately changed interpreters, for ``test_replay_mutations``: each adds a command
(a one-second timer) on one interpreter path, as a careless change would. Replaying the
recorded histories with one of them must fail; if it did not, the histories would not
cover that path and the replay test could not protect journeys in flight.

Each mutant is registered under the real workflow's name, so the replayer takes it for
the workflow that recorded the history."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.customer import CustomerWorkflow
    from workflows.interpreter import Interpreter
    from workflows.state import CustomerInput


def as_customer_workflow(cls):
    """``cls`` (a subclass of CustomerWorkflow) as a workflow named CustomerWorkflow."""

    def __init__(self, inp: CustomerInput) -> None:
        CustomerWorkflow.__init__(self, inp)

    async def run(self, inp: CustomerInput) -> None:
        await CustomerWorkflow.run(self, inp)

    # The SDK refuses methods of local classes; these are module-level in all but name.
    cls.__qualname__ = cls.__name__
    __init__.__qualname__, run.__qualname__ = f"{cls.__name__}.__init__", f"{cls.__name__}.run"
    cls.__init__, cls.run = workflow.init(__init__), workflow.run(run)
    return workflow.defn(name="CustomerWorkflow", sandboxed=False)(cls)


@as_customer_workflow
class Unchanged(CustomerWorkflow):
    """The real interpreter, unsandboxed like the mutants (the control)."""


async def _extra_timer() -> None:
    await workflow.sleep(timedelta(seconds=1))


@as_customer_workflow
class TimerBeforeContinueAsNew(CustomerWorkflow):
    async def _continue_as_new(self, inp) -> None:
        await _extra_timer()
        await super()._continue_as_new(inp)


def _before_step(kind: str):
    """The entity with an interpreter that adds a timer before every step of ``kind``."""

    class TimerInterpreter(Interpreter):
        async def execute(self, inst, journey, step):
            if step.kind == kind:
                await _extra_timer()
            return await super().execute(inst, journey, step)

    class Mutant(CustomerWorkflow):
        interpreter_class = TimerInterpreter

    Mutant.__name__ = f"TimerBefore_{kind}"
    return as_customer_workflow(Mutant)


@as_customer_workflow
class GoalIgnored(CustomerWorkflow):
    """Journeys no longer end at their goal (they keep waiting, then send)."""

    def _journey(self, plan_hash):
        import dataclasses

        return dataclasses.replace(super()._journey(plan_hash), goal=None)


MUTANTS = {
    "timer before continue-as-new (drain)": (TimerBeforeContinueAsNew, "c-can.run0"),
    "timer before exit": (_before_step("exit"), "c-exit"),
    "timer before call": (_before_step("call"), "c-recv"),
    "timer before notify": (_before_step("notify"), "c-recv"),
    "timer before wait for (received)": (_before_step("wait_for"), "c-recv"),
    "timer before wait for (timeout)": (_before_step("wait_for"), "c-exit"),
    "timer before send": (_before_step("send"), "c-goal"),
    "goal ignored": (GoalIgnored, "c-goal"),
}


def _interpreter_mutant(name: str, **methods):
    """The entity with an interpreter whose ``methods`` are replaced (experiments-v1)."""
    TimerInterpreter = type(f"{name}Interpreter", (Interpreter,), methods)

    class Mutant(CustomerWorkflow):
        interpreter_class = TimerInterpreter

    Mutant.__name__ = name
    return as_customer_workflow(Mutant)


async def _other_variant(self, inst, journey, step):
    """A split that lands each customer in the variant after its own (a changed hash)."""
    if step.kind == "split":
        from dsl.experiments import assign
        from dsl.ir import VARIANT_BLOCK
        from workflows.state import enter_block

        names = [v.name for v in step.variants]
        shares = [(v.name, v.weight) for v in step.variants]
        mine = assign(self.fx.state.customer_id, journey.name, step.experiment, shares)
        enter_block(inst.pos, VARIANT_BLOCK + names[(names.index(mine) + 1) % len(names)])
        return None
    return await Interpreter.execute(self, inst, journey, step)


# Mutants of the experiments (tests/workflows/test_experiments.py, histories experiments-v1)
EXPERIMENT_MUTANTS = {
    "split to another variant": (
        _interpreter_mutant("OtherVariant", execute=_other_variant),
        "c-x3",
    ),
    "holdout ignored": (
        _interpreter_mutant("HoldoutIgnored", held_out=lambda self, journey: False),
        "c-x1",
    ),
    "timer before split": (_before_step("split"), "c-x5"),
}
