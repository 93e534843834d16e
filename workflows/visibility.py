"""What a customer workflow shows Temporal's visibility (the UI's list and its queries).

In: the names of the customer's journeys in flight and the run's current typed search
attributes (``workflow.info().typed_search_attributes``: what the run started with,
carried over by continue-as-new, plus its own upserts). Out: ``JOURNEYS_KEY`` (the
KeywordList search attribute ``dsl.contract.JOURNEYS_ATTRIBUTE``) and
``journeys_update``: the one update that makes it equal the sorted names (unset when there
are none), or None when it already does.

Pure and deterministic, importable inside the workflow sandbox; the workflow decides
whether to upsert at all (workflows/customer.py ``_journeys_changed``).
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate, TypedSearchAttributes

from dsl.contract import JOURNEYS_ATTRIBUTE

JOURNEYS_KEY = SearchAttributeKey.for_keyword_list(JOURNEYS_ATTRIBUTE)


def journeys_update(
    names: Iterable[str], current: TypedSearchAttributes
) -> SearchAttributeUpdate | None:
    """The update that sets ``JOURNEYS_KEY`` to the sorted, distinct ``names`` (a journey
    with two instances, by ``key``, is listed once), or unsets it when ``names`` is empty;
    None when ``current`` already holds that value (an absent attribute equals none)."""
    wanted = sorted(set(names))
    if sorted(current.get(JOURNEYS_KEY) or []) == wanted:
        return None
    return JOURNEYS_KEY.value_set(wanted) if wanted else JOURNEYS_KEY.value_unset()
