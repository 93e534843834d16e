"""The worker side of the journeys search attribute: the plan store's flag in its lookup
answers (kept across reloads) and the list query."""

from __future__ import annotations

import os

from dsl.contract import LookupInput
from engine.runtime.plans import PlanStore
from engine.runtime.visibility import in_journey

RULES = """
journeys:
  hello:
    trigger: customer.signed_up
    steps:
      - send hello
"""


def test_answers_carry_the_flag_also_after_a_reload(tmp_path):
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    (templates / "hello.html.j2").write_text("{% block subject %}Hi{% endblock %}")
    (rules / "a.yaml").write_text(RULES)
    store = PlanStore(rules, templates, registry={})
    ask = LookupInput(event_type="customer.signed_up", trigger="customer.signed_up")
    assert store.answer(ask).settings.search_attributes is False  # until the worker says so
    store.use_search_attributes(True)
    assert store.answer(ask).settings.search_attributes is True
    (rules / "a.yaml").write_text(RULES.replace("hello:", "hi:"))
    st = (rules / "a.yaml").stat()
    os.utime(rules / "a.yaml", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    store._checked = 0.0  # the check runs at most once a second
    answer = store.answer(ask)
    assert answer.journeys[0].journey["name"] == "hi"  # reloaded
    assert answer.settings.search_attributes is True
    store.use_search_attributes(False)
    assert store.answer(ask).settings.search_attributes is False


def test_the_list_query_names_the_journey_and_running_customers():
    assert in_journey("win-back") == (
        "LifecycleJourneys = 'win-back' AND ExecutionStatus = 'Running'"
    )
    assert in_journey("it's") == ("LifecycleJourneys = 'it\\'s' AND ExecutionStatus = 'Running'")
