"""``lifecycle report`` (CONTRACT.md §8): the figures of a hand-computed small journal,
the text table pinned in full, the intervals against statsmodels, the winner rule, and
the real command over a simulation (a subject-line test with a holdout)."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from dsl.experiments import assign, in_holdout
from engine.tools.report import build_report, compare, format_report, newcombe, wilson

ROOT = Path(__file__).resolve().parents[2]


def _journal() -> list[dict]:
    """Five customers of journey j: c1, c2 control; c3, c5 playful; c4 held out (split
    playful, not counted in the experiment). Converted: c1, c3, c4, c5."""
    lines = []

    def add(cid, action, **fields):
        lines.append(
            {
                "at": "2030-01-01T00:00:00Z",
                "customer_id": cid,
                "journey": "j",
                "instance": "j:1",
                "action": action,
                **fields,
            }
        )

    for cid, variant, held, sent, converted in [
        ("c1", "control", False, "sent", True),
        ("c2", "control", False, "suppressed", False),
        ("c3", "playful", False, "sent", True),
        ("c4", "playful", True, "suppressed", True),
        ("c5", "playful", False, "sent", True),
    ]:
        add(cid, "start", plan="h", **({"holdout": True} if held else {}))
        add(cid, "split", experiment="subject", variant=variant, variants=["control", "playful"])
        template = "welcome" if variant == "control" else "welcome-playful"
        reason = "holdout" if held else ("unsubscribed" if sent != "sent" else "")
        add(cid, "send", template=template, status=sent, **({"reason": reason} if reason else {}))
        add(cid, "end", reason="goal" if converted else "completed", converted=converted)
    return lines


def test_figures_of_a_hand_computed_case():
    report = build_report(_journal())
    (j,) = report["journeys"]
    assert (j["entered"], j["holdout"], j["converted"], j["rate"]) == (5, 1, 4, 0.8)
    assert j["treated"] == {"entered": 4, "converted": 3, "rate": 0.75}
    assert j["held_out"] == {"entered": 1, "converted": 1, "rate": 1.0}
    assert j["messages"] == [
        {"template": "welcome", "status": "sent", "reason": "", "count": 1},
        {"template": "welcome", "status": "suppressed", "reason": "unsubscribed", "count": 1},
        {"template": "welcome-playful", "status": "sent", "reason": "", "count": 2},
        {"template": "welcome-playful", "status": "suppressed", "reason": "holdout", "count": 1},
    ]
    (e,) = report["experiments"]
    assert (e["journey"], e["experiment"], e["baseline"]) == ("j", "subject", "control")
    control, playful = e["variants"]
    assert control == {"variant": "control", "entered": 2, "converted": 1, "rate": 0.5}
    assert (playful["entered"], playful["converted"], playful["rate"]) == (2, 2, 1.0)
    assert playful["difference"] == 0.5 and playful["lift"] == 1.0
    low, high = confint_proportions_2indep(2, 2, 1, 2, method="newcomb", compare="diff")
    assert playful["interval"] == pytest.approx([low, high], abs=1e-12)
    assert not playful["significant"] and e["winner"] is None
    json.dumps(report)  # JSON-safe


def test_text_report_is_pinned():
    assert format_report(build_report(_journal())) == (
        "journeys\n"
        "  journey  entered  holdout  converted   rate  treated  held out\n"
        "  j              5        1          4  80.0%    75.0%    100.0%\n"
        "  j: treated vs held out -25.0 pp (95% CI -69.9 to +56.9), not significant\n"
        "\n"
        "messages\n"
        "  journey  template         status      reason        count\n"
        "  j        welcome          sent                          1\n"
        "  j        welcome          suppressed  unsubscribed      1\n"
        "  j        welcome-playful  sent                          2\n"
        "  j        welcome-playful  suppressed  holdout           1\n"
        "\n"
        "experiment subject (journey j)\n"
        "  variant  entered  converted    rate   diff pp       95% CI pp    lift\n"
        "  control        2          1   50.0%  baseline                          ##########..........\n"
        "  playful        2          2  100.0%     +50.0  -27.3 to +90.5  100.0%  ####################\n"
        "  no winner: no difference is significant at 95%\n"
    )


CASES = [(0, 1), (0, 10), (10, 10), (1, 10), (5, 10), (3, 7), (40, 200), (999, 1000), (17, 3000)]


@pytest.mark.parametrize("x,n", CASES)
def test_wilson_matches_statsmodels(x, n):
    assert wilson(x, n) == pytest.approx(proportion_confint(x, n, method="wilson"), abs=1e-12)


@pytest.mark.parametrize("a,b", list(itertools.combinations(CASES, 2)))
def test_newcombe_matches_statsmodels(a, b):
    (x1, n1), (x2, n2) = a, b
    _, low, high = newcombe(x1, n1, x2, n2)
    want = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert (low, high) == pytest.approx(want, abs=1e-9)


def test_winner_only_when_significant():
    def experiment(*rows):
        variants = [
            {"customer_id": f"{name}-{i}", "journey": "j", "instance": "j:1"}
            | {"variant": name, "converted": i < conv}
            for name, n, conv in rows
            for i in range(n)
        ]
        lines = []
        for v in variants:
            base = {k: v[k] for k in ("customer_id", "journey", "instance")}
            lines.append({**base, "action": "start"})
            lines.append(
                {
                    **base,
                    "action": "split",
                    "experiment": "e",
                    "variant": v["variant"],
                    "variants": [r[0] for r in rows],
                }
            )
            lines.append({**base, "action": "end", "reason": "goal", "converted": v["converted"]})
        return build_report(lines)["experiments"][0]["winner"]

    assert experiment(("a", 200, 20), ("b", 200, 60)) == "b"  # 10% vs 30%
    assert experiment(("a", 200, 60), ("b", 200, 20)) == "a"  # the first, when the other is worse
    assert experiment(("a", 200, 20), ("b", 200, 26)) is None  # 10% vs 13%: not significant
    assert experiment(("a", 200, 20), ("b", 200, 60), ("c", 200, 80)) == "c"
    assert experiment(("a", 200, 60), ("b", 200, 20), ("c", 200, 58)) is None


def test_compare_with_no_customers():
    assert compare(0, 0, 1, 2) == {
        "difference": None,
        "interval": None,
        "lift": None,
        "significant": False,
    }


RULES = """\
journeys:
  welcome:
    trigger: customer.signed_up
    goal: order.placed
    goal_within: 14 days
    holdout: 10%
    steps:
      - split subject-test:
          control 50%:
            - send welcome
          playful 50%:
            - send welcome-playful
      - wait 14 days
"""
TEMPLATE = "{% block subject %}SUBJECT{% endblock %}<p>hello</p>"
HALVES = [("control", 5000), ("playful", 5000)]


def test_report_over_a_simulation(tmp_path):
    """60 customers; every third orders on day 3, and c-0 on day 20 (after the window)."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yaml").write_text(RULES)
    (tmp_path / "templates").mkdir()
    for name in ("welcome", "welcome-playful"):
        (tmp_path / "templates" / f"{name}.html.j2").write_text(TEMPLATE.replace("SUBJECT", name))
    ids = [f"c-{i}" for i in range(60)]
    events = [
        {
            "type": "customer.signed_up",
            "customer_id": c,
            "at": "+0s",
            "customer": {"email": f"{c}@example.test"},
        }
        for c in ids
    ]
    buyers = ids[3::3]
    events += [{"type": "order.placed", "customer_id": c, "at": "+3d"} for c in buyers]
    events += [{"type": "order.placed", "customer_id": "c-0", "at": "+20d"}]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))

    def run_report(*extra: str) -> subprocess.CompletedProcess:
        folders = ["--rules", str(tmp_path / "rules"), "--templates", str(tmp_path / "templates")]
        return subprocess.run(
            [sys.executable, "-m", "engine", "report", str(path), *folders, "--until", "30d",
             *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    done = run_report("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    held = {c for c in ids if in_holdout(c, "welcome", 1000)}
    (j,) = report["journeys"]
    assert (j["entered"], j["holdout"], j["converted"]) == (60, len(held), len(buyers))
    assert j["held_out"]["converted"] == len(held & set(buyers))
    sent = {(m["template"], m["status"], m["reason"]): m["count"] for m in j["messages"]}
    variant = {c: assign(c, "welcome", "subject-test", HALVES) for c in ids}
    for name, template in (("control", "welcome"), ("playful", "welcome-playful")):
        group = {c for c in ids if variant[c] == name}
        assert sent.get((template, "sent", ""), 0) == len(group - held)
        assert sent.get((template, "suppressed", "holdout"), 0) == len(group & held)
    (e,) = report["experiments"]
    rows = {v["variant"]: v for v in e["variants"]}
    for name in ("control", "playful"):
        group = {c for c in ids if variant[c] == name} - held
        assert rows[name]["entered"] == len(group)
        assert rows[name]["converted"] == len(group & set(buyers))
    text = run_report()
    assert text.returncode == 0, text.stderr
    assert "experiment subject-test (journey welcome)" in text.stdout


# --------------------------------------------------------------------------- report --live


def test_since_takes_an_age_or_a_date():
    from datetime import UTC, datetime

    from engine.cli.report import since_instant

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert since_instant(None, now) == ""
    assert since_instant("30d", now) == "2026-11-01T12:00:00Z"
    assert since_instant("12h", now) == "2026-12-01T00:00:00Z"
    assert since_instant("2026-11-01", now) == "2026-11-01T00:00:00Z"
    assert since_instant("2026-11-01T10:30:00Z", now) == "2026-11-01T10:30:00Z"
    with pytest.raises(ValueError, match=r"bad --since 'soon': use an age such as 30d"):
        since_instant("soon", now)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: give a JSON-lines file of events to simulate, or --live"),
        (["samples/events.jsonl", "--live"], "error: give EVENTS (a simulation) or --live"),
        (["samples/events.jsonl", "--since", "30d"], "error: --since goes with --live"),
    ],
)
def test_report_says_what_it_needs(args, message, capsys):
    from engine.cli import ExitCode, main

    assert main(["report", *args]) == ExitCode.USAGE
    assert capsys.readouterr().err.startswith(message)


def test_a_live_report_over_the_sqlite_record(tmp_path, monkeypatch, capsys):
    """``--live`` reads the record where the worker keeps it (LIFECYCLE_DATA), with
    ``--since`` and ``--journey``; the figures are those of ``build_report``."""
    import asyncio

    from dsl.contract import RecordInput
    from engine.cli import ExitCode, main
    from engine.delivery.ledger import open_ledger
    from engine.runtime.record import rows_of

    monkeypatch.setenv("LIFECYCLE_DATA", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)

    async def write():
        ledger = await open_ledger(None, tmp_path / "ledger.sqlite")
        for n, (cid, at, conv) in enumerate(
            [("a", "2026-11-01T00:00:00Z", True), ("b", "2026-11-20T00:00:00Z", False)]
        ):
            lines = [
                {"seq": 1, "at": at, "journey": "j", "instance": "j:1", "action": "start"},
                {"seq": 2, "at": at, "journey": "j", "instance": "j:1", "action": "send",
                 "template": "t", "status": "sent"},
                {"seq": 3, "at": at, "journey": "j", "instance": "j:1", "action": "end",
                 "reason": "goal" if conv else "completed", "converted": conv},
                {"seq": 4, "at": at, "journey": "k", "instance": "k:2", "action": "start"},
            ]  # fmt: skip
            await ledger.append_journal(rows_of(RecordInput(cid, f"e{n}", lines)))
        await ledger.close()

    asyncio.run(write())
    assert main(["report", "--live", "--json", "--journey", "j"]) == ExitCode.OK
    (j,) = json.loads(capsys.readouterr().out)["journeys"]
    assert (j["journey"], j["entered"], j["converted"], j["rate"]) == ("j", 2, 1, 0.5)
    assert j["messages"] == [{"template": "t", "status": "sent", "reason": "", "count": 2}]

    assert main(["report", "--live", "--since", "2026-11-10"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith(
        f"live: the durable record in {tmp_path / 'ledger.sqlite'} since 2026-11-10T00:00:00Z\n"
    )
    assert "journeys\n" in out
    assert re.search(r"^  j +1 +0 +0 +0\.0%", out, re.M)  # b only: no conversion since then
