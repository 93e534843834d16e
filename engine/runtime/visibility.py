"""Finding customers in Temporal's visibility (the web UI's workflow list, ``temporal
workflow list``, ``Client.list_workflows``) by the journeys they are in.

In: a Temporal client. Out: ``journeys_attribute_registered`` (whether its namespace has
the ``dsl.contract.JOURNEYS_ATTRIBUTE`` search attribute, asked once when a worker starts:
``engine.runtime.assembly.assemble`` tells the plan store, whose lookup answers tell each
customer whether to upsert it) and ``in_journey`` (the list query for a journey's
customers).

Without the attribute nothing breaks: customers upsert nothing and the list query finds no
one. The time-skipping test server (simulations) has no operator service: off there.
"""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from dsl.contract import JOURNEYS_ATTRIBUTE, JOURNEYS_ATTRIBUTE_TYPE

log = logging.getLogger("lifecycle")


async def journeys_attribute_registered(client: Client) -> bool:
    """Whether ``client``'s namespace has ``JOURNEYS_ATTRIBUTE`` registered as a
    KeywordList. Logs why not (a missing or mistyped attribute, an error), except on a
    server without the operator service (the time-skipping test server)."""
    namespace = client.namespace
    try:
        answer = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            log.debug("no operator service (a test server): search attributes off")
        else:
            log.warning(
                "could not list the search attributes of namespace %s (%s): customers will "
                "not show their journeys in the Temporal UI",
                namespace,
                err.message,
            )
        return False
    kind = answer.custom_attributes.get(JOURNEYS_ATTRIBUTE)
    if kind == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST:
        return True
    if kind is None:
        log.info(
            "search attribute %s is not registered in namespace %s: customers will not show "
            "their journeys in the Temporal UI; to have them: temporal operator "
            "search-attribute create --namespace %s --name %s --type %s, then restart the "
            "worker (docs/operations.md)",
            JOURNEYS_ATTRIBUTE,
            namespace,
            namespace,
            JOURNEYS_ATTRIBUTE,
            JOURNEYS_ATTRIBUTE_TYPE,
        )
    else:
        log.warning(
            "search attribute %s of namespace %s is a %s, not a %s: customers will not show "
            "their journeys in the Temporal UI",
            JOURNEYS_ATTRIBUTE,
            namespace,
            IndexedValueType.Name(kind),
            JOURNEYS_ATTRIBUTE_TYPE,
        )
    return False


def in_journey(journey: str) -> str:
    """The visibility query for the customers with ``journey`` in flight, for
    ``Client.list_workflows`` or the web UI: ``LifecycleJourneys = 'win-back' AND
    ExecutionStatus = 'Running'`` (a run that continued as new is closed but keeps the
    value it had)."""
    return f"{JOURNEYS_ATTRIBUTE} = '{_quoted(journey)}' AND ExecutionStatus = 'Running'"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
