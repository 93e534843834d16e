"""One registry for the activities rules can ``call``.

In: Python functions decorated with ``@activity(...)``, each taking one input dataclass,
in the ``activities`` package (or any module imported before ``load_registry``).
Out: ``ActivitySpec`` entries; ``catalogue`` describes them as plain data
(``dsl.catalogue.ActivityDecl``) and the compiler checks a rule's ``call NAME(...)``
against that, and the worker registers exactly this set as Temporal activities
(``temporal_activities``), so a typo is a compile error, not an endless retry.

    from dataclasses import dataclass
    from engine.runtime.registry import activity

    @dataclass
    class CreateTicketInput:
        priority: str
        complaint: str
        customer_id: str = ""      # filled in by the runtime (see CONTEXT_FIELDS)

    @activity("create_ticket", timeout_seconds=30)
    async def create_ticket(inp: CreateTicketInput) -> dict:
        ...

Fields named in ``CONTEXT_FIELDS`` are filled by the runtime, never by the rule.

A developer's activity can never stall the engine: an ``async def`` one runs on an event
loop of its own, in a thread of its own (a ``time.sleep`` inside it blocks only itself), a
plain ``def`` one runs in a thread pool, and the worker runs them on their own task queue
with their own slots (``engine.runtime.worker.build_worker``). Every call is bounded in time:
``timeout_seconds`` per attempt, ``schedule_to_close_seconds`` for all attempts together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import pkgutil
import threading
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dsl.catalogue import (
    DEFAULT_SCHEDULE_TO_CLOSE_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    ActivityDecl,
    Param,
)
from dsl.contract import CALL_PREFIX, CallInput, call_activity_name

# Filled in by the runtime when the input dataclass declares them.
CONTEXT_FIELDS = ("customer_id", "journey", "idempotency_key")
ACTIVITY_PREFIX = CALL_PREFIX


@dataclass(frozen=True)
class ActivitySpec:
    name: str
    fn: Callable[[Any], Awaitable[Any]] | Callable[[Any], Any]
    input_type: type
    params: dict[str, Param]
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS  # start-to-close: one attempt
    max_attempts: int = 0  # 0: retry until schedule_to_close_seconds is spent
    doc: str = ""
    schedule_to_close_seconds: int = DEFAULT_SCHEDULE_TO_CLOSE_SECONDS  # all attempts

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @property
    def temporal_name(self) -> str:
        return call_activity_name(self.name)

    def decl(self) -> ActivityDecl:
        """What the compiler sees of this activity (no function, no input type)."""
        return ActivityDecl(
            name=self.name,
            params=dict(self.params),
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            schedule_to_close_seconds=self.schedule_to_close_seconds,
            doc=self.doc,
        )


def catalogue(registry: Mapping[str, ActivitySpec]) -> dict[str, ActivityDecl]:
    """The registry as the compiler's activity catalogue (``dsl.catalogue``)."""
    return {name: spec.decl() for name, spec in registry.items()}


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
    name: str | None = None,
    *,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    max_attempts: int = 0,
    schedule_to_close_seconds: int = DEFAULT_SCHEDULE_TO_CLOSE_SECONDS,
) -> Callable[[Callable], Callable]:
    """Register a function (``async def`` or plain ``def``) taking one input dataclass as
    a callable activity."""

    def decorate(fn: Callable) -> Callable:
        act_name = name or fn.__name__
        for label, value in (
            ("timeout_seconds", timeout_seconds),
            ("schedule_to_close_seconds", schedule_to_close_seconds),
        ):
            if not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise RegistryError(f"activity {act_name!r}: {label} must be a positive number")
        if schedule_to_close_seconds < timeout_seconds:
            raise RegistryError(
                f"activity {act_name!r}: schedule_to_close_seconds ({schedule_to_close_seconds})"
                f" must be at least timeout_seconds ({timeout_seconds})"
            )
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise RegistryError(f"activity {act_name!r}: max_attempts must be 0 or more")
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
        _REGISTRY[act_name] = ActivitySpec(
            name=act_name,
            fn=fn,
            input_type=input_type,
            params=params,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            doc=inspect.getdoc(fn) or "",
            schedule_to_close_seconds=schedule_to_close_seconds,
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
    """Temporal activity callables, one per spec, each taking a ``dsl.contract.CallInput``.

    An ``async def`` activity runs on its own event loop in its own thread
    (``run_isolated``), so one that blocks (``time.sleep``, a synchronous HTTP client, a
    CPU-bound loop) cannot freeze the worker's loop and with it every email. A plain
    ``def`` activity is registered as a synchronous Temporal activity: the worker runs it
    in its ``activity_executor`` thread pool."""
    from temporalio import activity as t_activity

    out = []
    for spec in registry.values():

        def make(spec: ActivitySpec) -> Callable:
            field_names = {f.name for f in dataclasses.fields(spec.input_type)}

            def build_input(payload: CallInput) -> Any:
                kwargs = dict(payload.args)
                for k, v in payload.context.items():
                    if k in field_names:
                        kwargs[k] = v
                return spec.input_type(**kwargs)

            if spec.is_async:

                async def run(payload: CallInput) -> Any:
                    inp = build_input(payload)
                    return to_jsonable(await run_isolated(spec.fn, inp, f"call.{spec.name}"))

            else:

                def run(payload: CallInput) -> Any:  # type: ignore[misc]
                    return to_jsonable(spec.fn(build_input(payload)))

            run.__name__ = spec.name
            return t_activity.defn(name=spec.temporal_name)(run)

        out.append(make(spec))
    return out


async def run_isolated(fn: Callable[[Any], Awaitable[Any]], arg: Any, name: str) -> Any:
    """Await ``fn(arg)`` on a fresh event loop in a thread of its own.

    The caller's loop only waits on a future, so it keeps serving everything else even
    while ``fn`` blocks its thread. Cancelling the caller (the attempt timed out, the
    worker stops) cancels the coroutine on its loop; one that blocks without returning to
    its loop keeps its thread until it does (the thread is a daemon and cannot hold up
    the process). Inside, ``temporalio.activity.info()`` and ``heartbeat()`` work; the
    heartbeat is handed back to the worker's loop, where the SDK expects it."""
    outer = asyncio.get_running_loop()
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # Stopped when the call finished or was cancelled: let cancellations land.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            loop.close()

    threading.Thread(target=serve, name=name, daemon=True).start()

    async def body() -> Any:
        _hand_heartbeats_to(outer)
        return await fn(arg)

    def stop(_: Any) -> None:
        loop.call_soon_threadsafe(loop.stop)

    try:
        # The task starts in a copy of this context: the activity's info() is there.
        future = asyncio.run_coroutine_threadsafe(body(), loop)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        raise
    future.add_done_callback(stop)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()
        raise


def _hand_heartbeats_to(loop: asyncio.AbstractEventLoop) -> None:
    """In the isolated loop's task: make ``activity.heartbeat()`` run on the worker's loop
    (the SDK schedules the heartbeat there with ``asyncio.create_task``)."""
    from temporalio import activity as t_activity

    try:
        current = t_activity._Context.current()  # no public way to rebind the heartbeat
    except RuntimeError:
        return
    original = current.heartbeat
    if original is None:
        return

    def heartbeat(*details: Any) -> None:
        loop.call_soon_threadsafe(original, *details)

    t_activity._Context.set(dataclasses.replace(current, heartbeat=heartbeat))
