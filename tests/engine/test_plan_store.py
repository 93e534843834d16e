"""The worker's plan: recompiled when a rules file changes, the last good plan kept when
the new rules do not compile."""

from __future__ import annotations

import os

import pytest

from engine.runtime import PlanError, PlanStore

RULES = """
journeys:
  hello:
    trigger: customer.signed_up
    steps:
      - send hello
"""


@pytest.fixture
def folders(tmp_path):
    rules, templates = tmp_path / "rules", tmp_path / "templates"
    rules.mkdir()
    templates.mkdir()
    (templates / "hello.html.j2").write_text("{% block subject %}Hi{% endblock %}")
    (rules / "a.yaml").write_text(RULES)
    return rules, templates


def touch_later(path, text):
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_lookup_returns_the_full_journey_only_when_not_known(folders):
    store = PlanStore(*folders, registry={})
    (item,) = store.lookup("customer.signed_up", [])
    assert item["journey"]["name"] == "hello" and item["hash"] == item["journey"]["hash"]
    assert store.lookup("customer.signed_up", [item["hash"]]) == [{"hash": item["hash"]}]
    assert store.lookup("order.placed", []) == []


def test_a_changed_rules_file_is_recompiled(folders):
    rules, _ = folders
    store = PlanStore(*folders, registry={})
    touch_later(rules / "a.yaml", RULES.replace("customer.signed_up", "order.placed"))
    store._checked = 0.0  # the check runs at most once a second
    assert store.lookup("customer.signed_up", []) == []
    assert [i["journey"]["name"] for i in store.lookup("order.placed", [])] == ["hello"]


def test_rules_that_stop_compiling_keep_the_previous_plan(folders, caplog):
    rules, _ = folders
    store = PlanStore(*folders, registry={})
    touch_later(rules / "a.yaml", RULES.replace("send hello", "send helo"))
    store._checked = 0.0
    assert [i["journey"]["name"] for i in store.lookup("customer.signed_up", [])] == ["hello"]
    assert "unknown template 'helo'" in caplog.text
    assert "keeping the previous plan" in caplog.text


def test_a_worker_refuses_to_start_on_rules_that_do_not_compile(folders):
    rules, _ = folders
    (rules / "a.yaml").write_text(RULES.replace("send hello", "send helo"))
    with pytest.raises(PlanError) as err:
        PlanStore(*folders, registry={})
    assert str(err.value) == (
        f"{rules / 'a.yaml'}:6:14: error: unknown template 'helo'\n"
        "      - send helo\n"
        "             ^\n"
        "hint: did you mean 'hello'?"
    )
