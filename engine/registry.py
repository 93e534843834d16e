"""One registry for the activities rules can ``call``.

In: Python functions decorated with ``@activity(...)``, each taking one input dataclass,
in the ``activities`` package (or any module imported before ``load_registry``).
Out: ``ActivitySpec`` entries; the compiler checks a rule's ``call NAME(...)`` against
their parameters, and the worker registers exactly this set as Temporal activities
(``temporal_activities``), so a typo is a compile error, not an endless retry.

    from dataclasses import dataclass
    from engine.registry import activity

    @dataclass
    class CreateTicketInput:
        priority: str
        complaint: str
        customer_id: str = ""      # filled in by the runtime (see CONTEXT_FIELDS)

    @activity("create_ticket", timeout_seconds=30)
    async def create_ticket(inp: CreateTicketInput) -> dict:
        ...

Fields named in ``CONTEXT_FIELDS`` are filled by the runtime, never by the rule.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# Filled in by the runtime when the input dataclass declares them.
CONTEXT_FIELDS = ("customer_id", "journey", "idempotency_key")
ACTIVITY_PREFIX = "call."


@dataclass(frozen=True)
class Param:
    type: str  # "str" | "number" | "bool" | "list" | "any"
    required: bool


@dataclass(frozen=True)
class ActivitySpec:
    name: str
    fn: Callable[[Any], Awaitable[Any]]
    input_type: type
    params: dict[str, Param]
    timeout_seconds: int = 60
    max_attempts: int = 0  # 0: retry until it succeeds
    doc: str = ""

    @property
    def temporal_name(self) -> str:
        return ACTIVITY_PREFIX + self.name


class RegistryError(Exception):
    pass


_REGISTRY: dict[str, ActivitySpec] = {}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        names = {_type_name(a) for a in typing.get_args(tp) if a is not type(None)}
        return names.pop() if len(names) == 1 else "any"
    if tp is bool:
        return "bool"
    if tp in (int, float):
        return "number"
    if tp is str:
        return "str"
    if tp is list or origin is list:
        return "list"
    return "any"


def activity(
    name: str | None = None, *, timeout_seconds: int = 60, max_attempts: int = 0
) -> Callable[[Callable], Callable]:
    """Register an async function taking one input dataclass as a callable activity."""

    def decorate(fn: Callable) -> Callable:
        act_name = name or fn.__name__
        sig = inspect.signature(fn)
        if len(sig.parameters) != 1:
            raise RegistryError(f"activity {act_name!r} must take exactly one input dataclass")
        hints = typing.get_type_hints(fn)
        (param_name,) = sig.parameters
        input_type = hints.get(param_name)
        if not (isinstance(input_type, type) and dataclasses.is_dataclass(input_type)):
            raise RegistryError(f"activity {act_name!r}: its parameter must be a dataclass")
        field_hints = typing.get_type_hints(input_type)
        params = {}
        for f in dataclasses.fields(input_type):
            if f.name in CONTEXT_FIELDS:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            params[f.name] = Param(_type_name(field_hints[f.name]), required)
        if not inspect.iscoroutinefunction(fn):
            raise RegistryError(f"activity {act_name!r} must be an async function")
        _REGISTRY[act_name] = ActivitySpec(
            name=act_name,
            fn=fn,
            input_type=input_type,
            params=params,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            doc=inspect.getdoc(fn) or "",
        )
        return fn

    return decorate


def load_registry(package: str = "activities") -> dict[str, ActivitySpec]:
    """Import every module of ``package`` (registering its activities) and return the table."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)
    return dict(_REGISTRY)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def temporal_activities(registry: dict[str, ActivitySpec]) -> list[Callable]:
    """Temporal activity callables, one per spec, each taking ``{"args":…, "context":…}``."""
    from temporalio import activity as t_activity

    out = []
    for spec in registry.values():

        def make(spec: ActivitySpec) -> Callable:
            field_names = {f.name for f in dataclasses.fields(spec.input_type)}

            async def run(payload: dict) -> Any:
                kwargs = dict(payload.get("args", {}))
                for k, v in payload.get("context", {}).items():
                    if k in field_names:
                        kwargs[k] = v
                return to_jsonable(await spec.fn(spec.input_type(**kwargs)))

            run.__name__ = spec.name
            return t_activity.defn(name=spec.temporal_name)(run)

        out.append(make(spec))
    return out
