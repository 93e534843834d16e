"""The journeys search attribute inside the workflow: the one update ``journeys_update``
makes (a table), and none at all on the time-skipping test server, which has no custom
search attributes (a simulation's histories hold no upsert of it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from dsl.contract import JOURNEYS_ATTRIBUTE
from engine.runtime.visibility import journeys_attribute_registered
from engine.tools.simulator import simulate, start_environment
from tests.workflows.record_histories import _events, paths_folders
from workflows.visibility import JOURNEYS_KEY, journeys_update


def current(value):
    if value is None:
        return TypedSearchAttributes.empty
    return TypedSearchAttributes([SearchAttributePair(JOURNEYS_KEY, value)])


@pytest.mark.parametrize(
    ("names", "now", "expected"),
    [
        (["win-back"], None, ["win-back"]),  # first journey: set
        (["win-back", "welcome", "win-back"], None, ["welcome", "win-back"]),  # sorted, once
        (["welcome", "win-back"], ["welcome", "win-back"], "no update"),  # unchanged
        ([], ["win-back"], None),  # the last one ended: unset
        ([], None, "no update"),  # none, and none set
        ([], [], "no update"),  # an empty list counts as none
    ],
)
def test_journeys_update(names, now, expected):
    update = journeys_update(names, current(now))
    if expected == "no update":
        assert update is None
    else:
        assert (update.key, update.value) == (JOURNEYS_KEY, expected)


async def test_the_test_server_has_no_search_attributes_and_nothing_is_upserted():
    env = await start_environment()
    try:
        assert not await journeys_attribute_registered(env.client)
        rules, templates = paths_folders()
        start = datetime(2030, 1, 1, tzinfo=UTC)
        events = _events([("+0s", "c-sa", "go", {}), ("+2h", "c-sa", "reply.sent", {})], start)
        result = await simulate(
            events, rules, templates, start, timedelta(days=5), keep_histories=True, env=env
        )
    finally:
        await env.shutdown()
    assert [a["action"] for a in result.public_actions()].count("end") == 1
    (history,) = result.histories.values()
    upserts = [
        e["upsertWorkflowSearchAttributesEventAttributes"]["searchAttributes"]["indexedFields"]
        for e in history["events"]
        if e["eventType"] == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"
    ]
    assert upserts and all(set(f) == {"TemporalChangeVersion"} for f in upserts)
    assert JOURNEYS_ATTRIBUTE not in str(history)
