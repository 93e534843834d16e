"""The plan store: the compiled plan and the template set that went live with it.

In: a rules folder, a templates folder, the activity registry.
Out: ``PlanStore`` (recompiled, at most once a second, when a rules or template file
changes; a plan that does not compile is refused and the previous one kept), its
``lookup`` (the journeys a trigger starts, by trigger key: an event trigger's key is the
event type) and ``answer`` (the lookup activity's ``dsl.contract.LookupResult``: those
journeys, every trigger key, and the customer-wide settings).

Journeys in flight keep the plan they started with (pinned in the customer's state by
content hash); a reloaded plan only changes which journeys *start* from then on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from dsl.contract import CustomerSettings, LookupInput, LookupItem, LookupResult
from dsl.ir import to_dict
from engine.runtime.registry import ActivitySpec, catalogue, load_registry

log = logging.getLogger("lifecycle")


def compile_content(
    rules_dir: str | Path,
    templates,
    registry: dict[str, ActivitySpec] | None = None,
    *,
    renders: bool = True,
):
    """``dsl.compiler.compile_rules`` given what the engine has: the catalogue of the
    activity registry (loaded when not given) and the shared render pool for the sample
    renders, so ``validate`` checks what a send would hit. ``renders=False`` skips the
    sample renders (and starts no render process) for callers that only read the plan.
    Returns its ``CompileResult``."""
    from dsl.compiler import compile_rules

    registry = registry if registry is not None else load_registry()
    renderer = None
    if renders:
        from engine.delivery.render_pool import shared_pool

        renderer = shared_pool()
    return compile_rules(rules_dir, templates, catalogue(registry), renderer=renderer)


class PlanError(Exception):
    """The rules do not compile; the message is the rendered problem list."""


class PlanStore:
    """The current compiled plan and its templates; recompiled (at most once a second)
    when a rules or template file changes. Rules and templates go live together, only
    when all of them compile and validate; otherwise the previous plan and template set
    stay. ``templates`` is that set (``dsl.templates.TemplateSet``): the email activity
    renders from it, never from the folder, through ``template_source()``."""

    # The worker's namespace has the journeys search attribute (``use_search_attributes``,
    # from ``engine.runtime.assembly.assemble``): answers tell customers to upsert it.
    search_attributes = False

    def __init__(
        self,
        rules_dir: str | Path,
        templates_dir: str | Path,
        registry: dict[str, ActivitySpec] | None = None,
        *,
        renders: bool = True,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.templates_dir = Path(templates_dir)
        # False: compile without the sample renders, for a reader of the plan that sends
        # nothing (the HTTP API: the schema and the shop's name); the worker checks them.
        self.renders = renders
        self.registry = registry if registry is not None else load_registry()
        self._checked = 0.0
        self._stamp: tuple = ()
        self._lock = threading.Lock()  # lookups run in a thread pool
        self.by_trigger: dict[str, list[dict]] = {}  # trigger key -> journeys (IR dicts)
        self.journeys: dict[str, dict] = {}
        self.settings = CustomerSettings()
        self.templates = None
        self.static = False
        self.load()

    @classmethod
    def from_plan(
        cls, plan, registry: dict[str, ActivitySpec] | None = None, templates=None
    ) -> PlanStore:
        """A store over an already compiled plan that never reloads (tests, benchmarks);
        ``templates`` is its ``TemplateSet`` (None: the email activity reads its folder)."""
        store = cls.__new__(cls)
        store.registry = registry if registry is not None else load_registry()
        store.static, store._checked, store._stamp = True, 0.0, ()
        store._lock = threading.Lock()
        store.templates = templates
        store._index(plan)
        return store

    def _files_stamp(self) -> tuple:
        files = sorted(self.rules_dir.rglob("*.y*ml")) + sorted(self.templates_dir.rglob("*"))
        out = []
        for p in files:
            try:
                if p.is_file():
                    st = p.stat()
                    out.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                continue  # removed while listing
        return tuple(out)

    def load(self) -> None:
        stamp = self._files_stamp()
        # The compiler reads the templates folder once; that snapshot is what it checked
        # and what goes live, so an edit saved during the compile waits for the next one.
        result = compile_content(
            self.rules_dir,
            self.templates_dir,
            self.registry,
            renders=getattr(self, "renders", True),
        )
        if result.problems:
            raise PlanError("\n".join(str(p) for p in result.problems))
        self._index(result.plan)
        self.templates = result.template_set
        self._stamp = stamp

    def template_source(self) -> _StoreTemplates:
        """For ``EmailActivities(templates=...)``: ``current()`` is this store's live set."""
        return _StoreTemplates(self)

    def _index(self, plan) -> None:
        journeys = {}
        by_trigger: dict[str, list[dict]] = {}
        for name, journey in plan.journeys.items():
            data = to_dict(journey)
            journeys[name] = data
            for trigger in journey.triggers:  # a list of triggers: indexed under each
                by_trigger.setdefault(trigger.key, []).append(data)
        self.journeys, self.by_trigger = journeys, by_trigger
        ps = plan.settings
        self.settings = CustomerSettings(
            sender=ps.sender,
            unsubscribe_url=ps.unsubscribe_url,
            timezone=ps.timezone,
            quiet_hours=list(ps.quiet_hours) if ps.quiet_hours else None,
            frequency_cap=list(ps.frequency_cap) if ps.frequency_cap else None,
            consent=ps.consent.tree if ps.consent is not None else None,
            public_url=ps.public_url,
            contact_policy=True,
            search_attributes=self.search_attributes,
        )
        self.schema = getattr(plan, "schema", None)  # dsl.ir.Schema: what events must fit

    def use_search_attributes(self, on: bool) -> None:
        """Whether the answers from now on tell customers to keep the journeys search
        attribute (``dsl.contract.CustomerSettings.search_attributes``)."""
        self.search_attributes = on
        self.settings = dataclasses.replace(self.settings, search_attributes=on)

    def refresh(self) -> None:
        now = time.monotonic()
        if self.static or now - self._checked < 1.0:
            return
        with self._lock:
            if now - self._checked < 1.0:
                return
            self._checked = now
            if self._files_stamp() != self._stamp:
                stamp = self._files_stamp()
                try:
                    self.load()
                    log.info(
                        "rules or templates changed: plan and templates reloaded (%d journeys)",
                        len(self.journeys),
                    )
                except PlanError as err:
                    # Keep running the last good plan and templates; say why.
                    log.error(
                        "rules or templates changed but do not compile; keeping the previous "
                        "plan and templates:\n%s",
                        err,
                    )
                    self._stamp = stamp

    def answer(self, inp: LookupInput) -> LookupResult:
        """The lookup activity's answer: the journeys ``inp``'s trigger starts, every trigger
        key of the plan (the customer's trigger cache) and the customer-wide settings."""
        items = self.lookup(inp.trigger_key, inp.known)
        return LookupResult(
            journeys=[LookupItem(hash=i["hash"], journey=i.get("journey")) for i in items],
            triggers=sorted(self.by_trigger),
            settings=self.settings,
        )

    def lookup(self, trigger_key: str, known: Sequence[str]) -> list[dict]:
        """Journeys started by the trigger ``trigger_key`` (an event trigger's key is its
        event type); the full journey only when its hash is not ``known``."""
        self.refresh()
        known_set = set(known)
        out = []
        for data in self.by_trigger.get(trigger_key, ()):
            item = {"hash": data["hash"]}
            if data["hash"] not in known_set:
                item["journey"] = data
            out.append(item)
        return out


class _StoreTemplates:
    """The template source of a ``PlanStore``: the set that went live with the plan."""

    def __init__(self, store: PlanStore) -> None:
        self.store = store

    def current(self):
        self.store.refresh()
        return self.store.templates
