"""The API's connection to Temporal, which may come and go.

In: ``Settings`` (``TEMPORAL_ADDRESS`` ..., ``LIFECYCLE_API_TEMPORAL_TIMEOUT``). Out:
``TemporalLink``: ``start()`` begins connecting in the background and returns at once (the
API answers while Temporal is down), ``send(events)`` delivers events (signal-with-start,
each bounded by the timeout), ``status(customer_id)`` queries a customer, ``health()`` says
whether Temporal answers. While there is no connection, or a call fails for a reason that
passes (unreachable, timed out, overloaded), they raise ``Unavailable`` with the seconds
the client should wait before retrying: the app answers 503 (or 429) with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.runtime.client import connect_options, get_status, send_event
from engine.runtime.config import TASK_QUEUE
from engine.runtime.settings import Settings

log = logging.getLogger("lifecycle.api")

# Status codes that pass with time; anything else is a real error of the request.
_TRANSIENT = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
}
# Signal-with-starts in flight per API process, across all requests. Without a shared
# bound, 30 batches of 100 put 3,000 calls into the client at once; they queued past their
# timeout inside the SDK, every request answered 503 and the retries doubled the load
# (bench/bench_api.py). 64 is past the point where more stops helping (direct calls:
# 32 and 256 in flight gave the same rate).
SEND_CONCURRENCY = 64


class Unavailable(Exception):
    def __init__(self, message: str, retry_after: int = 5, overloaded: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.overloaded = overloaded  # Temporal said RESOURCE_EXHAUSTED: 429, not 503


class NotFound(Exception):
    pass


class TemporalLink:
    def __init__(
        self, settings: Settings, client: Client | None = None, task_queue: str = TASK_QUEUE
    ) -> None:
        self.settings = settings
        self.task_queue = task_queue
        self.client = client
        self.timeout = settings.api_temporal_timeout
        self.last_error = "" if client else "not connected yet"
        self._task: asyncio.Task | None = None
        self._checked = (0.0, client is not None)
        self._gate: asyncio.Semaphore | None = None  # made on the server's event loop

    @property
    def address(self) -> str:
        return self.settings.temporal_target

    def start(self) -> None:
        if self.client is None and self._task is None:
            self._task = asyncio.create_task(self._connect_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _connect_loop(self) -> None:
        address, kwargs = connect_options(self.settings)
        delay = 0.5
        while self.client is None:
            try:
                self.client = await asyncio.wait_for(
                    Client.connect(address, **kwargs), timeout=max(self.timeout, 2.0)
                )
                self.last_error = ""
                log.info("connected to Temporal at %s", address)
            except (RuntimeError, OSError, TimeoutError) as err:
                message = str(err).splitlines()[0] if str(err) else type(err).__name__
                if message != self.last_error:
                    log.warning("Temporal at %s is unreachable (%s); retrying", address, message)
                self.last_error = message
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _client(self) -> Client:
        if self.client is None:
            raise Unavailable(
                f"Temporal at {self.address} is not reachable yet ({self.last_error}); "
                "nothing was accepted, retry the same request"
            )
        return self.client

    async def send(self, events: Sequence[dict]) -> None:
        """Every event accepted by Temporal (durable), or ``Unavailable``: some may have
        been accepted, so the client retries the whole request (event ids dedupe)."""
        client = self._client()
        if self._gate is None:
            self._gate = asyncio.Semaphore(SEND_CONCURRENCY)
        gate = self._gate

        async def one(event: dict) -> None:
            async with gate:  # the timeout starts once the call is made, not while queued
                await send_event(client, event, self.task_queue, rpc_timeout=self.timeout)

        results = await asyncio.gather(*(one(e) for e in events), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise self._translate(result)

    async def status(self, customer_id: str) -> dict:
        client = self._client()
        try:
            return await asyncio.wait_for(get_status(client, customer_id), self.timeout)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(customer_id) from None
            raise self._translate(err) from None
        except TimeoutError:
            raise Unavailable("the customer did not answer in time; try again") from None
        except Exception as err:  # a query the workflow failed (WorkflowQueryFailedError)
            if "not found" in str(err).lower():
                raise NotFound(customer_id) from None
            raise Unavailable(f"the customer cannot answer now: {err}") from None

    async def health(self) -> tuple[bool, str]:
        """(Temporal answers, a word on it); checked at most once a second."""
        if self.client is None:
            return False, f"unreachable at {self.address}: {self.last_error}"
        at, ok = self._checked
        if time.monotonic() - at > 1.0:
            try:
                ok = await asyncio.wait_for(
                    self.client.service_client.check_health(), timeout=min(self.timeout, 2.0)
                )
                self.last_error = "" if ok else "not serving"
            except Exception as err:  # noqa: BLE001  (any failure means: not healthy)
                ok, self.last_error = False, str(err).splitlines()[0] if str(err) else "timeout"
            self._checked = (time.monotonic(), ok)
        return ok, (
            f"connected to {self.address}"
            if ok
            else f"unreachable at {self.address}: {self.last_error}"
        )

    def _translate(self, err: BaseException) -> Exception:
        if isinstance(err, RPCError):
            if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
                return Unavailable(
                    "Temporal is over its rate limit; retry the same request",
                    retry_after=2,
                    overloaded=True,
                )
            if err.status in _TRANSIENT:
                self._checked = (time.monotonic(), False)
                self.last_error = err.message or err.status.name
                return Unavailable(
                    f"Temporal did not accept the events ({err.message or err.status.name}); "
                    "retry the same request (event ids make a retry safe)"
                )
            return err if isinstance(err, Exception) else RuntimeError(str(err))
        if isinstance(err, TimeoutError | asyncio.TimeoutError | RuntimeError | OSError):
            return Unavailable(f"Temporal did not answer in time ({err}); retry the same request")
        return err if isinstance(err, Exception) else RuntimeError(str(err))
