"""The worker's plan: recompiled when a rules file changes, the last good plan kept when
the new rules do not compile."""

from __future__ import annotations

import os

import pytest

from engine.runtime.plans import PlanError, PlanStore

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


def send_input(key: str):
    from engine.delivery.email_activity import SendEmailInput

    return SendEmailInput(
        idempotency_key=key,
        kind="send",
        template="hello",
        to="ann@example.test",
        sender="Acme <hello@acme.test>",
        customer_id="c-1",
        journey="hello",
        context={"customer": {"name": "Ann"}, "trigger": {}},
    )


async def test_a_broken_template_edit_keeps_the_previous_set_and_sends_still_render(
    folders, caplog, smtp_settings, sink, tmp_path
):
    """CONTRACT §3 / issue 7 case 5: saving a template that does not compile while the
    worker runs changes nothing; the next send renders the last good set."""
    from temporalio.testing import ActivityEnvironment

    from engine.delivery.email_activity import EmailActivities
    from engine.delivery.ledger import open_ledger

    rules, templates = folders
    hello = templates / "hello.html.j2"
    hello.write_text("{% block subject %}Hi {{ customer.name }}{% endblock %}")
    store = PlanStore(*folders, registry={})
    ledger = await open_ledger(None, tmp_path / "ledger.sqlite")
    acts = EmailActivities(templates, smtp_settings, ledger, templates=store.template_source())
    try:
        touch_later(hello, "{% block subject %}Hi {{ customer.name }{% endblock %}")
        store._checked = 0.0
        result = await ActivityEnvironment().run(acts.send_email, send_input("k-1"))
        assert "keeping the previous plan and templates" in caplog.text
        assert f"{hello}:1:1: error: template syntax error: unexpected '}}'" in caplog.text
        assert result.status == "sent" and result.subject == "Hi Ann"
        # A fixed edit goes live at the next check.
        touch_later(hello, "{% block subject %}Hello again {{ customer.name }}{% endblock %}")
        store._checked = 0.0
        result = await ActivityEnvironment().run(acts.send_email, send_input("k-2"))
        assert result.subject == "Hello again Ann"
        assert [m.message["Subject"] for m in sink.messages] == ["Hi Ann", "Hello again Ann"]
    finally:
        await acts.close()


def test_a_layout_that_breaks_keeps_the_previous_set(folders):
    rules, templates = folders
    (templates / "layouts").mkdir()
    (templates / "layouts" / "base.html.j2").write_text("<b>{% block body %}{% endblock %}</b>")
    hello = templates / "hello.html.j2"
    hello.write_text(
        '{% extends "layouts/base.html.j2" %}{% block subject %}Hi{% endblock %}'
        "{% block body %}x{% endblock %}"
    )
    store = PlanStore(*folders, registry={})
    before = store.templates
    touch_later(templates / "layouts" / "base.html.j2", "<b>{% block body %}</b>")
    store._checked = 0.0
    store.refresh()
    assert store.templates is before
    assert "{% endblock %}" in store.template_source().current().sources["layouts/base.html.j2"]
