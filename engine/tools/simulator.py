"""Running events through the real workflows on Temporal's time-skipping test server.

In: events (CONTRACT.md §2, ``at`` absolute or an offset like ``+2d`` / ``+1d6h``), a
rules and a templates folder, a start time and a horizon.
Out: ``SimulationResult``: every action (send, notify, call, end, plus start and failures)
with its simulated time, and every email the capturing SMTP server received.

The real ``CustomerWorkflow``, the real email activity (Jinja sandbox, ``EmailMessage``,
aiosmtplib) and the real custom activities run; email goes to an in-process aiosmtpd
server on 127.0.0.1, the sent-ledger and activity data live in a temporary folder.
The test server's clock starts at the real current time; ``start`` is mapped onto it, so
printed times are ``start + elapsed``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dsl.clock import parse_iso, parse_offset
from engine.runtime.client import parse_event
from engine.runtime.config import binary_path, customer_workflow_id

PUBLIC_ACTIONS = ("send", "notify", "call", "end", "defer", "split")  # defer: §6, split: §8


class SimulationError(ValueError):
    pass


def parse_when(text: str, start: datetime) -> datetime:
    offset = parse_offset(text)
    if offset is not None:
        return start + offset
    try:
        return parse_iso(text)
    except ValueError:
        raise SimulationError(
            f"bad time {text!r}: use ISO 8601 (2026-03-01T10:00:00Z) or an offset (+2d, +1d6h)"
        ) from None


def read_events(path: str | Path, start: datetime) -> list[tuple[datetime, dict]]:
    """Events of a JSON-lines file with their simulated time, in time order (stable)."""
    out = []
    problems = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            event = parse_event(line, where=f"{path}:{lineno}", allow_offset=True)
            when = parse_when(str(event.get("at", "+0s")), start)
        except ValueError as err:
            problems.append(str(err))
            continue
        out.append((when, event))
    if problems:
        raise SimulationError("\n".join(problems))
    out.sort(key=lambda item: item[0])
    return out


@dataclass
class SimulationResult:
    start: datetime
    actions: list[dict] = field(default_factory=list)
    emails: list = field(default_factory=list)  # engine.tools.smtp_sink captured messages
    histories: dict = field(default_factory=dict)  # workflow id -> history JSON (on request)
    statuses: dict = field(default_factory=dict)  # customer id -> last status query (on request)

    def public_actions(self) -> list[dict]:
        """The actions of CONTRACT.md §4 (send, notify, call, end) in simulated-time order."""
        out = []
        for a in self.actions:
            if a["action"] not in PUBLIC_ACTIONS:
                continue
            line = {
                "at": a["at"],
                "customer_id": a["customer_id"],
                "journey": a["journey"],
                "action": a["action"],
            }
            if a["action"] in ("send", "notify"):
                line.update(template=a.get("template"), to=a.get("to"), subject=a.get("subject"))
                if a.get("status") not in (None, "sent", "duplicate"):
                    line["status"] = a["status"]
                    if a.get("reason"):  # suppressed: why (CONTRACT.md §6)
                        line["reason"] = a["reason"]
            elif a["action"] == "defer":
                # A send held by the contact policy: it appears again when it is sent.
                line.update(
                    template=a.get("template"),
                    until=a.get("until"),
                    reason=a.get("reason"),
                    detail=a.get("detail"),
                )
            elif a["action"] == "call":
                line["activity"] = a.get("activity")
            elif a["action"] == "split":
                line.update(experiment=a.get("experiment"), variant=a.get("variant"))
            else:
                line["reason"] = a.get("reason")
                if a.get("error"):
                    line["error"] = a["error"]
                if "converted" in a:  # a journey with a goal (CONTRACT.md §8)
                    line["converted"] = a["converted"]
            out.append(line)
        return out


_RUNTIME = None


def quiet_runtime():
    """A Temporal runtime that logs only errors: the test server does not advertise every
    capability the SDK core asks for, and its warning about that means nothing here."""
    global _RUNTIME
    if _RUNTIME is None:
        from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

        _RUNTIME = Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")
                )
            )
        )
    return _RUNTIME


async def start_environment():
    """A fresh time-skipping test server (quiet). ``simulate`` starts one per call unless it
    is given one; tests share one per module (``env=``) to save its start-up."""
    from temporalio.testing import WorkflowEnvironment

    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary_path("temporal-test-server"), runtime=quiet_runtime()
    )


async def simulate(
    events: Iterable[tuple[datetime, dict]],
    rules_dir: str | Path,
    templates_dir: str | Path,
    start: datetime,
    until: timedelta = timedelta(days=90),
    progress: Callable[[datetime, int], None] | None = None,
    store=None,
    keep_histories: bool = False,
    history_limit: int | None = None,
    env=None,
    send_heartbeat_seconds: float | None = None,
    smtp_reject: Callable[[str], str | None] | None = None,
    keep_status: bool = False,
) -> SimulationResult:
    """Run ``events`` through the real workflows and activities until ``until`` past
    ``start``. ``env``: a time-skipping ``WorkflowEnvironment`` to run on (its customers'
    workflows are terminated at the end, so the next simulation on it starts afresh);
    default: a fresh one, shut down at the end. ``send_heartbeat_seconds``: the send
    activity's heartbeat timeout for the customers this run starts (tests).
    ``smtp_reject``: the capturing server refuses a recipient for which it returns a
    reply such as ``"550 5.1.1 no such user"`` (tests of hard bounces). ``keep_status``:
    each customer's ``status`` query at the end goes into ``result.statuses``."""
    from engine.delivery.smtp import SmtpSettings
    from engine.runtime.assembly import assemble
    from engine.runtime.plans import PlanStore
    from engine.runtime.settings import override
    from engine.tools.smtp_sink import SmtpSink

    events = sorted(events, key=lambda item: item[0])  # stable: same-time order kept
    end_at = start + until
    work = Path(tempfile.mkdtemp(prefix="lifecycle-sim-"))
    restore_data = override("LIFECYCLE_DATA", str(work))  # custom activities write here
    # Marketing email in a simulation carries the unsubscribe link a local deployment
    # would: the API's default address, unless LIFECYCLE_PUBLIC_URL says otherwise.
    from engine.runtime.settings import setting

    restore_public = (
        override("LIFECYCLE_PUBLIC_URL", f"http://127.0.0.1:{setting('api_port')}")
        if not setting("public_url")
        else (lambda: None)
    )
    sink = SmtpSink(reject=smtp_reject) if smtp_reject is not None else SmtpSink()
    sink.start()
    own_env = env is None
    try:
        store = store or PlanStore(rules_dir, templates_dir)
        if own_env:
            env = await start_environment()
        customers = list(dict.fromkeys(e["customer_id"] for _, e in events))
        try:
            queue = f"simulate-{uuid.uuid4().hex[:8]}"
            smtp = SmtpSettings(host="127.0.0.1", port=sink.port)
            async with assemble(
                env.client, store, smtp, work / "ledger.sqlite", queue, templates_dir=templates_dir
            ):
                result = await _drive(
                    env,
                    events,
                    start,
                    end_at,
                    queue,
                    progress,
                    history_limit,
                    send_heartbeat_seconds,
                )
                if keep_status:
                    for cid in customers:
                        handle = env.client.get_workflow_handle(customer_workflow_id(cid))
                        result.statuses[cid] = await _query(env, handle, "status")
                if keep_histories:
                    for cid in customers:
                        await _keep_histories(env.client, customer_workflow_id(cid), result)
        finally:
            if own_env:
                await env.shutdown()
            else:
                await _terminate(env.client, customers)
        result.emails = list(sink.messages)
        return result
    finally:
        sink.stop()
        restore_data()
        restore_public()
        shutil.rmtree(work, ignore_errors=True)


async def _terminate(client, customers: list[str]) -> None:
    """End the customers' workflows, so that a later simulation on the same server that
    uses the same customer ids starts new entities instead of signalling these."""
    from temporalio.service import RPCError

    for cid in customers:
        try:
            await client.get_workflow_handle(customer_workflow_id(cid)).terminate(
                reason="simulation over"
            )
        except RPCError:
            pass  # not running (never started, or already closed)


async def _keep_histories(client, wf_id: str, result: SimulationResult) -> None:
    """Every run of the customer's chain: ``wf_id`` for the last, ``wf_id.runN`` for each
    run that continued as new (their histories show the drain)."""
    latest = client.get_workflow_handle(wf_id)
    first = (await latest.describe()).raw_description.workflow_execution_info.first_run_id
    run_id, n = first, 0
    while run_id:
        history = await client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        following = ""
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            following = (
                last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            )
        result.histories[f"{wf_id}.run{n}" if following else wf_id] = history.to_json_dict()
        run_id, n = following, n + 1


async def _drive(
    env, events, start, end_at, queue, progress, history_limit=None, send_heartbeat_seconds=None
) -> SimulationResult:
    import asyncio

    from engine.runtime.client import send_event
    from engine.runtime.settings import setting

    t0 = await env.get_current_time()
    t0 = t0.replace(microsecond=0)
    # Every customer's clock is moved by this much, so workflow time *is* simulated time
    # (expressions such as days_since, the journal and email Date headers all see it).
    offset = (start - t0).total_seconds()

    async def sim_now() -> datetime:
        return await env.get_current_time() + timedelta(seconds=offset)

    async def advance_to(target: datetime) -> None:
        delta = (target - await sim_now()).total_seconds()
        if delta > 0:
            await env.sleep(delta)

    customers: list[str] = []
    handles = {}
    wakes: dict[str, datetime | None] = {}  # each customer's next wake-up (simulated)
    limit = asyncio.Semaphore(32)

    def parse(text: str | None) -> datetime | None:
        return None if text is None else parse_iso(text)

    journals: dict[str, list[dict]] = {}  # every action of each customer, collected as it happens
    seqs: dict[str, int] = {}

    async def next_wake(cid: str) -> datetime | None:
        """Collect the customer's new journal lines; return its next wake-up."""
        async with limit:
            # Ask only a run that is idle by the server's account: a query that reaches a
            # run while it continues as new can be lost on the test server (see _query).
            desc = (await handles[cid].describe()).raw_description
            if desc.HasField("pending_workflow_task") or len(desc.pending_activities) > 0:
                return await sim_now()
            answer = await _query(env, handles[cid], "progress", seqs.get(cid, 0))
        if answer["lost"]:
            raise SimulationError(
                f"customer {cid!r}: {answer['lost']} actions happened between two looks"
                " and fell out of its journal"
            )
        journals.setdefault(cid, []).extend(answer["lines"])
        seqs[cid] = answer["seq"]
        return parse(answer["next_wake"])

    async def settle(candidates: set[str]) -> None:
        """Wait (in real time) until these customers are idle, and note their next wake-up.
        Only customers that just got an event or whose wake-up has come can be busy, so
        only they are asked: asking everyone made a run quadratic in the customers."""
        pending = set(candidates)
        for _ in range(5000):
            if not pending:
                return
            now = await sim_now()
            ids = sorted(pending)
            answers = await asyncio.gather(*(next_wake(cid) for cid in ids))
            pending = set()
            for cid, wake in zip(ids, answers, strict=True):
                if wake is not None and wake <= now:
                    pending.add(cid)
                else:
                    wakes[cid] = wake
            if pending:
                await asyncio.sleep(0.02)
        raise SimulationError("a journey did not settle (an activity keeps failing?)")

    sent = 0
    i = 0
    while True:
        upcoming = [w for w in wakes.values() if w is not None]
        next_wake_at = min(upcoming) if upcoming else None
        next_event_at = events[i][0] if i < len(events) and events[i][0] <= end_at else None
        targets = [t for t in (next_wake_at, next_event_at) if t is not None]
        if not targets:
            break
        target = min(targets)
        if target > end_at:
            break
        await advance_to(target)
        now = await sim_now()
        candidates = {cid for cid, w in wakes.items() if w is not None and w <= now}
        while i < len(events) and events[i][0] <= target:
            event = events[i][1]
            await send_event(
                env.client,
                event,
                task_queue=queue,
                clock_offset=offset,
                allow_offset=True,
                history_limit=history_limit,
                send_heartbeat_seconds=send_heartbeat_seconds,
            )
            cid = event["customer_id"]
            if cid not in handles:
                customers.append(cid)
                handles[cid] = env.client.get_workflow_handle(customer_workflow_id(cid))
            candidates.add(cid)
            sent += 1
            i += 1
        await settle(candidates)
        if progress:
            progress(await sim_now(), sent)

    actions = []
    await asyncio.gather(*(next_wake(cid) for cid in customers))  # the last lines
    for cid in customers:
        if setting("debug"):
            print(json.dumps(await handles[cid].query("status"), indent=1))
        actions.extend(journals.get(cid, []))
    actions.sort(key=lambda a: a["at"])  # stable: per-customer order kept within a second
    return SimulationResult(start=start, actions=actions)


QUERY_TIMEOUT = timedelta(seconds=10)


async def _query(env, handle, name: str, *args):
    """A query that cannot hang the simulation. On the time-skipping test server, a query
    that reaches a run as it continues as new waits out its whole deadline and leaves time
    skipping locked, so the next ``env.sleep`` never returns (FINDINGS.md). Ask with a
    short deadline; after a lost answer, release the lock the query left and ask again."""
    from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
    from temporalio.service import RPCError, RPCStatusCode

    for _ in range(5):
        try:
            return await handle.query(name, *args, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as err:
            if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                raise
            try:
                await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
            except RPCError:
                pass  # the query had not kept a lock after all
    raise SimulationError(f"{handle.id}: no answer to the {name!r} query")


def format_json_lines(result: SimulationResult) -> str:
    return "".join(json.dumps(line) + "\n" for line in result.public_actions())
