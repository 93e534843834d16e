"""The hand-written baseline workflows, one module each, as one would write them: the
sandbox re-imports a workflow's module for every new workflow instance, so each holds
just its workflow; the shared, deterministic parts (``bench.handwritten``) are passed
through like the engine's ``dsl`` and ``workflows.state``."""
