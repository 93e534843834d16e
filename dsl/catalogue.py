"""The activity catalogue: what the compiler knows about the activities a rule can ``call``.

In: nothing (plain data). Out: ``ActivityDecl`` (name, parameters with their types and
whether they are required, and the time and attempt bounds every call of it gets) and
``Param``. A catalogue is a ``Mapping[str, ActivityDecl]``; the worker's registry
(``engine.runtime.registry.catalogue``) produces it from the activities it will run, so
the compiler checks calls against exactly that set without importing any of their code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Defaults of every call (docs/activities.md): one attempt may take a minute, all
# attempts together an hour; then the step fails and the journey reports it.
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_SCHEDULE_TO_CLOSE_SECONDS = 3600


@dataclass(frozen=True)
class Param:
    type: str  # "str" | "number" | "bool" | "list" | "any"
    required: bool


@dataclass(frozen=True)
class ActivityDecl:
    """One callable activity as the rules see it."""

    name: str
    params: dict[str, Param] = field(default_factory=dict)
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS  # start-to-close: one attempt
    max_attempts: int = 0  # 0: retry until schedule_to_close_seconds is spent
    schedule_to_close_seconds: int = DEFAULT_SCHEDULE_TO_CLOSE_SECONDS  # all attempts
    doc: str = ""


Catalogue = Mapping[str, ActivityDecl]
