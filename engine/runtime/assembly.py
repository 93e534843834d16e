"""One way to put a worker together, for the worker process, the simulator, tests and
benches alike.

In: a Temporal client, a ``PlanStore``, ``SmtpSettings``, where the sent-ledger lives (a
SQLite path, a ``DATABASE_URL``, or an open ``Ledger``) and a task queue.
Out: ``assemble(...)``, an async context manager that opens the ledger, builds the email
activities (rendering the store's validated template set, or the templates folder when the
store has none), tells the store whether the namespace has the journeys search attribute
(``engine.runtime.visibility``), builds and starts the ``EngineWorker`` (``build_worker``),
yields an ``Assembly``, and on the way out stops the worker and closes the SMTP connection
and the ledger, in that order, whatever happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from engine.delivery.email_activity import EmailActivities
from engine.delivery.ledger import Ledger, open_ledger
from engine.delivery.signing import signer_from
from engine.delivery.smtp import SmtpSettings
from engine.delivery.unsubscribe import Links
from engine.runtime.config import TASK_QUEUE
from engine.runtime.keys import load_keys
from engine.runtime.plans import PlanStore
from engine.runtime.settings import Settings
from engine.runtime.visibility import journeys_attribute_registered
from engine.runtime.worker import EngineWorker, build_worker


@dataclass
class Assembly:
    """What ``assemble`` started: all of it is closed when its block ends."""

    worker: EngineWorker
    email: EmailActivities
    ledger: Ledger
    task_queue: str


@asynccontextmanager
async def assemble(
    client: Client,
    store: PlanStore,
    smtp: SmtpSettings,
    ledger: str | Path | Ledger,
    task_queue: str = TASK_QUEUE,
    *,
    database_url: str | None = None,
    templates_dir: str | Path | None = None,
    settings: Settings | None = None,
    extra_activities: Sequence = (),
) -> AsyncIterator[Assembly]:
    """The running worker of ``store``'s journeys on ``task_queue``.

    ``ledger``: an open ``Ledger`` (taken over: closed at the end), or the SQLite file to
    use when ``database_url`` is not set. ``templates_dir``: the folder rendered from when
    the store holds no validated template set (default: the store's). ``settings``: the
    worker's limits (cached customers, concurrent calls); default ``Settings.from_env()``.
    """
    settings = settings if settings is not None else Settings.from_env()
    # Asked once: customers upsert the journeys search attribute only where it exists.
    store.use_search_attributes(await journeys_attribute_registered(client))
    if not isinstance(ledger, Ledger):
        ledger = await open_ledger(database_url, Path(ledger))
    try:
        folder = templates_dir or getattr(store, "templates_dir", None) or "templates"
        email = EmailActivities(
            folder,
            smtp,
            ledger,
            templates=store.template_source() if store.templates is not None else None,
            links=Links(load_keys(settings).secret, settings.public_url),
            dkim=signer_from(settings),
        )
    except BaseException:
        await ledger.close()
        raise
    try:
        worker = build_worker(
            client,
            store,
            email,
            task_queue=task_queue,
            extra_activities=extra_activities,
            settings=settings,
        )
        async with worker:
            yield Assembly(worker, email, ledger, task_queue)
    finally:
        await email.close()  # the SMTP connection and the ledger
