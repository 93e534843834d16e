"""Rendering templates in separate processes, bounded in time and memory.

In: a ``TemplateSet`` (the snapshot of a templates folder), a template name and its
variables (or, for ``validate``, the names a step provides, rendered with sample values).
Out: a ``RenderedEmail``, or ``TemplateRenderError`` naming the template file and line.

Why processes: Jinja renders synchronously, so a long render inside the async email
activity would freeze every activity and workflow task of the worker (FINDINGS.md). A
render runs in a ``pebble.ProcessPool`` process instead, under three limits:

- memory: each process sets ``RLIMIT_AS`` (address space) to ``LIFECYCLE_RENDER_MEMORY_MB``
  (default 256), so an allocation beyond it raises ``MemoryError`` at the template line;
- time: a render is interrupted after ``LIFECYCLE_RENDER_TIMEOUT`` seconds (default 5) by a
  timer signal in its process, which names the template line it was on; a render stuck in
  one long C call is killed by the pool one second later and its process replaced;
- parallelism: ``LIFECYCLE_RENDER_PROCESSES`` processes (default: the number of CPUs, at
  most 4), so one customer's slow template occupies one of them, not the worker.

A template over a limit fails the same way every time: the email activity turns it into a
non-retryable ``TemplateError`` for that journey only.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import multiprocessing
import resource
import signal
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from dsl.templates import TemplateRenderError, TemplateSet, make_environment
from engine.delivery.message import RenderedEmail, RenderLimitError, render_email

TIMEOUT_ENV = "LIFECYCLE_RENDER_TIMEOUT"
MEMORY_ENV = "LIFECYCLE_RENDER_MEMORY_MB"
PROCESSES_ENV = "LIFECYCLE_RENDER_PROCESSES"
HARD_KILL_GRACE = 1.0  # seconds after the soft limit before the process is killed


@dataclass(frozen=True)
class RenderLimits:
    timeout: float = 5.0  # seconds per render
    memory_mb: int = 256  # address space of a render process
    processes: int = 2

    @classmethod
    def from_env(cls, env=None) -> RenderLimits:
        """``LIFECYCLE_RENDER_*``, read through ``engine.runtime.settings``."""
        from engine.runtime.settings import setting

        return cls(
            timeout=setting("render_timeout", env),
            memory_mb=setting("render_memory_mb", env),
            processes=setting("render_processes", env),
        )


# --------------------------------------------------------------------------- the child


_ENVS: OrderedDict[tuple[str, bool], Any] = OrderedDict()  # (digest, sample) -> Environment
_MISSING = "missing"


def _init_process(memory_bytes: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _on_alarm(timeout: float):
    def handler(signum, frame) -> None:
        raise RenderLimitError(_timeout_text(timeout))

    return handler


def _render_job(
    digest: str,
    sources: dict[str, str] | None,
    name: str,
    variables: dict,
    sample_names: tuple[str, ...] | None,
    timeout: float,
) -> tuple[str, Any]:
    """Runs in a render process: ("ok", RenderedEmail) | ("error", TemplateRenderError) |
    ("missing", None) when this process has not seen the template set yet."""
    sample = sample_names is not None
    env = _ENVS.get((digest, sample))
    if env is None:
        if sources is None:
            return _MISSING, None
        from pathlib import Path

        env = make_environment(TemplateSet(Path("."), sources, digest))
        if sample:
            # Sample values are not JSON data; tojson prints them as text.
            env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
        _ENVS[(digest, sample)] = env
        while len(_ENVS) > 4:
            _ENVS.popitem(last=False)
    _ENVS.move_to_end((digest, sample))
    if sample:
        variables = dict(variables)
        for n in sample_names:
            variables.setdefault(n, SampleValue(n))
    signal.signal(signal.SIGALRM, _on_alarm(timeout))
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return "ok", render_email(env, name, variables)
    except TemplateRenderError as exc:
        return "error", exc
    except RenderLimitError:  # raised outside the template's own frames
        text = _timeout_text(timeout)
        return "error", TemplateRenderError(_file(name), None, text, "limit")
    except MemoryError:
        text = _memory_text()
        return "error", TemplateRenderError(_file(name), None, text, "limit")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _timeout_text(timeout: float) -> str:
    return f"rendering took longer than {timeout:g} s ({TIMEOUT_ENV})"


def _memory_text() -> str:
    return f"rendering needs more memory than a render may use ({MEMORY_ENV})"


class SampleValue:
    """What ``validate`` renders a template with for each name a step provides: it is a
    text, a number, a list of one item and a mapping at once, so loops, filters and
    operators run without real data (and the sandbox still refuses ``__class__``)."""

    __slots__ = ("_label",)

    def __init__(self, label: str = "sample") -> None:
        self._label = label

    def __getattr__(self, name: str) -> SampleValue:
        # Jinja asks for these markers on callables; a sample has none of them.
        if name.startswith("_") or name in _NOT_ATTRIBUTES:
            raise AttributeError(name)
        return SampleValue(f"{self._label}.{name}")

    def __getitem__(self, key) -> SampleValue:
        return SampleValue(f"{self._label}[{key!r}]")

    def __call__(self, *args, **kwargs) -> SampleValue:
        return SampleValue(f"{self._label}()")

    def __iter__(self):
        yield SampleValue(f"{self._label}[0]")

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return self._label

    __repr__ = __str__

    def __int__(self) -> int:
        return 1

    def __float__(self) -> float:
        return 1.0

    def __index__(self) -> int:
        return 1

    def __round__(self, ndigits=None):
        return 1 if ndigits is None else 1.0

    def __format__(self, spec: str) -> str:
        try:
            return format(1, spec)
        except ValueError:
            return format(self._label, spec)

    def __hash__(self) -> int:
        return hash(self._label)

    def __eq__(self, other) -> bool:
        return isinstance(other, SampleValue) and other._label == self._label

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    def __lt__(self, other) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __contains__(self, item) -> bool:
        return True

    def _same(self, *args) -> SampleValue:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _same
    __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _same


_NOT_ATTRIBUTES = frozenset(
    {"unsafe_callable", "alters_data", "jinja_pass_arg", "jinja_async_variant"}
)


# --------------------------------------------------------------------------- the parent


class RenderPool:
    """Processes that render templates under ``RenderLimits``; started on first use."""

    def __init__(self, limits: RenderLimits | None = None) -> None:
        self.limits = limits or RenderLimits.from_env()
        self._pool = None
        self._lock = threading.Lock()

    def _get_pool(self):
        with self._lock:
            if self._pool is None:
                import pebble

                # spawn: the worker process has Temporal's threads; forking it is unsafe.
                self._pool = pebble.ProcessPool(
                    max_workers=self.limits.processes,
                    initializer=_init_process,
                    initargs=(self.limits.memory_mb * 1024 * 1024,),
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def _schedule(self, templates, name, variables, sample_names, with_sources):
        return self._get_pool().schedule(
            _render_job,
            args=(
                templates.digest,
                templates.sources if with_sources else None,
                name,
                variables,
                tuple(sample_names) if sample_names is not None else None,
                self.limits.timeout,
            ),
            timeout=self.limits.timeout + HARD_KILL_GRACE,
        )

    def _outcome(self, name: str, future_result) -> RenderedEmail:
        kind, value = future_result
        if kind == "ok":
            return value
        raise value

    def _failure(self, name: str, exc: BaseException) -> TemplateRenderError:
        if isinstance(exc, concurrent.futures.TimeoutError):
            text = _timeout_text(self.limits.timeout) + "; the render was stopped"
        else:  # the process died: killed for memory, or crashed
            text = f"the render process died ({exc}); {_memory_text()}"
        return TemplateRenderError(_file(name), None, text, "limit")

    def submit(self, templates: TemplateSet, name: str, variables: dict, sample_names=None):
        """Start a render; returns a handle for ``result``."""
        return [
            templates,
            name,
            variables,
            sample_names,
            self._schedule(templates, name, variables, sample_names, with_sources=False),
        ]

    def result(self, handle) -> RenderedEmail:
        """Wait for a render started with ``submit`` (blocking: for ``validate``)."""
        templates, name, variables, sample_names, future = handle
        try:
            out = future.result()
            if out[0] == _MISSING:
                future = self._schedule(templates, name, variables, sample_names, True)
                out = future.result()
        except (concurrent.futures.TimeoutError, Exception) as exc:
            if isinstance(exc, TemplateRenderError):
                raise
            raise self._failure(name, exc) from None
        return self._outcome(name, out)

    def render(self, templates: TemplateSet, name: str, variables: dict) -> RenderedEmail:
        return self.result(self.submit(templates, name, variables))

    async def render_async(
        self, templates: TemplateSet, name: str, variables: dict
    ) -> RenderedEmail:
        """Render without blocking the event loop; cancelling it stops the render."""
        for with_sources in (False, True):
            future = self._schedule(templates, name, variables, None, with_sources)
            try:
                out = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                future.cancel()  # pebble stops the process running it
                raise
            except Exception as exc:
                raise self._failure(name, exc) from None
            if out[0] != _MISSING:
                return self._outcome(name, out)
        raise RuntimeError("render process lost the template set")  # not reached

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()  # no render is waited for at exit: a running one is stopped
            pool.stop()
            _stop_workers_first(pool)
            pool.join(timeout=5)


def _stop_workers_first(pool) -> None:
    """End the pool's processes before pebble (5.2) closes its channels: closing them
    unlinks their semaphore, and a process still starting up then dies printing a
    ``FileNotFoundError`` traceback from ``SemLock._rebuild`` into our stderr (seen in CI
    under a command's output). With the pool stopped, its manager thread starts no new
    process once it has ended; then each process is stopped as pebble would stop it."""
    loop = getattr(pool, "_pool_manager_loop", None)
    workers = getattr(getattr(getattr(pool, "_pool_manager", None), "worker_manager", None),
                      "workers", None)  # fmt: skip
    if loop is None or not isinstance(workers, dict):
        return  # another pebble: its own order
    loop.join(timeout=5)
    if loop.is_alive():
        return
    from pebble.common.process import stop_process

    for pid in list(workers):
        stop_process(workers.pop(pid))


def _file(name: str) -> str:
    from dsl.templates import TEMPLATE_SUFFIX, template_file

    return name if name.endswith(TEMPLATE_SUFFIX) else template_file(name)


_SHARED: RenderPool | None = None
_SHARED_LOCK = threading.Lock()
_EXIT_HOOK: list = []


def shared_pool() -> RenderPool:
    """One pool per process, with the limits the environment sets now (a change of the
    variables, as tests make, replaces the pool)."""
    global _SHARED
    limits = RenderLimits.from_env()
    with _SHARED_LOCK:
        if _SHARED is not None and _SHARED.limits != limits:
            _SHARED.close()
            _SHARED = None
        if _SHARED is None:
            import pebble  # noqa: F401  (its exit handler first, so ours runs before it)

            _SHARED = RenderPool(limits)
            if not _EXIT_HOOK:
                _EXIT_HOOK.append(atexit.register(close_shared))
        return _SHARED


def close_shared() -> None:
    """Stop the shared pool's processes (at exit; a later ``shared_pool()`` starts anew)."""
    if _SHARED is not None:
        _SHARED.close()
