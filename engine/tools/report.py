"""Measurement over a simulation's journal (CONTRACT.md §8): what ``lifecycle report``
prints.

In: the journal lines of a simulation (``SimulationResult.actions``: ``start`` lines with
``holdout``, ``split`` lines, ``send`` / ``notify`` lines with ``status`` and ``reason``,
``end`` lines with ``converted``), each with its ``customer_id`` and ``instance``.
Out: ``build_report(actions)`` → a JSON-safe dict, ``format_report(report)`` → a small
text table, and the statistics they use (``wilson``, ``newcombe``, ``compare``).

Per journey: entered, holdout, converted and the rate (also for the treated and the
holdout group apart), messages by template and status. Per experiment (a journey's
``split``) and variant: entered, converted and the rate, counting only customers who are
not in the journey's holdout; then each later variant against the first: the difference
in conversion rate (percentage points) with its 95 % interval, and the relative lift.

The test: a variant differs significantly from the first when the 95 % interval of the
difference of the two conversion rates, by Newcombe's hybrid score method (Newcombe 1998,
method 10, from two Wilson score intervals), excludes 0; that is a two-sided test at the
5 % level. The winner is the best significant variant better than the first, or the
first when every other variant is significantly worse; otherwise there is none. There is
no correction for comparing several variants. The intervals are checked against
statsmodels' ``confint_proportions_2indep(method="newcomb")`` (tests/engine).
"""

from __future__ import annotations

import math
from collections import defaultdict

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (``n`` > 0)."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """``p1 - p2`` and its interval by Newcombe's hybrid score method (``n1, n2`` > 0)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def compare(x: int, n: int, x0: int, n0: int) -> dict:
    """A group (``x`` of ``n`` converted) against a baseline (``x0`` of ``n0``)."""
    if not n or not n0:
        return {"difference": None, "interval": None, "lift": None, "significant": False}
    d, low, high = newcombe(x, n, x0, n0)
    base = x0 / n0
    return {
        "difference": d,
        "interval": [low, high],
        "lift": (x / n) / base - 1 if base else None,
        "significant": low > 0 or high < 0,
    }


def _rate(x: int, n: int) -> float | None:
    return x / n if n else None


def build_report(actions: list[dict]) -> dict:
    """The report (see the module's docstring) from a simulation's journal lines."""
    journeys: dict[str, dict] = {}
    held: set[tuple[str, str]] = set()  # (customer id, instance) in a holdout
    conversions: dict[tuple[str, str], bool] = {}
    splits: list[dict] = []
    for a in actions:
        name = a.get("journey") or ""
        inst = (a.get("customer_id"), a.get("instance"))
        action = a.get("action")
        if not name or a.get("instance") is None:
            continue
        j = journeys.setdefault(
            name,
            {"entered": 0, "holdout": 0, "ids": set(), "messages": defaultdict(int)},
        )
        if action == "start":
            j["entered"] += 1
            j["ids"].add(inst)
            if a.get("holdout"):
                j["holdout"] += 1
                held.add(inst)
        elif action == "end":
            conversions[inst] = a.get("converted") is True
        elif action == "split":
            splits.append(a)
        elif action in ("send", "notify"):
            status = a.get("status") or "sent"
            if status == "duplicate":  # an earlier attempt went out: counted as sent
                status = "sent"
            reason = a.get("reason") or "" if status != "sent" else ""
            # a line stands for one message, or for ``count`` of them (the live record)
            j["messages"][(a.get("template") or "", status, reason)] += a.get("count", 1)

    out_journeys = []
    for name in sorted(journeys):
        j = journeys[name]
        ids = j["ids"]
        converted = sum(1 for i in ids if conversions.get(i))
        held_ids = ids & held
        held_conv = sum(1 for i in held_ids if conversions.get(i))
        treated = len(ids) - len(held_ids)
        entry = {
            "journey": name,
            "entered": j["entered"],
            "holdout": j["holdout"],
            "converted": converted,
            "rate": _rate(converted, len(ids)),
            "treated": {
                "entered": treated,
                "converted": converted - held_conv,
                "rate": _rate(converted - held_conv, treated),
            },
            "held_out": {
                "entered": len(held_ids),
                "converted": held_conv,
                "rate": _rate(held_conv, len(held_ids)),
            },
            "messages": [
                {"template": t, "status": s, "reason": r, "count": n}
                for (t, s, r), n in sorted(j["messages"].items())
            ],
        }
        if held_ids:
            entry["vs_holdout"] = compare(converted - held_conv, treated, held_conv, len(held_ids))
        out_journeys.append(entry)

    # experiments: (journey, experiment) -> variant -> instances, in the order seen
    experiments: dict[tuple[str, str], dict[str, set]] = {}
    for a in splits:
        inst = (a.get("customer_id"), a.get("instance"))
        if inst in held:
            continue  # held out: sent nothing, so not part of the comparison
        variants = experiments.setdefault((a["journey"], a.get("experiment") or ""), {})
        variants.setdefault(a.get("variant") or "", set()).add(inst)
    out_experiments = []
    for (journey, experiment), variants in sorted(experiments.items()):
        rows = []
        for variant, ids in variants.items():
            converted = sum(1 for i in ids if conversions.get(i))
            rows.append(
                {
                    "variant": variant,
                    "entered": len(ids),
                    "converted": converted,
                    "rate": _rate(converted, len(ids)),
                }
            )
        rows = _in_written_order(rows, actions, journey, experiment)
        base = rows[0]
        for row in rows[1:]:
            row.update(
                compare(row["converted"], row["entered"], base["converted"], base["entered"])
            )
        out_experiments.append(
            {
                "journey": journey,
                "experiment": experiment,
                "baseline": base["variant"],
                "variants": rows,
                "winner": _winner(rows),
            }
        )
    return {"journeys": out_journeys, "experiments": out_experiments}


def _in_written_order(rows: list[dict], actions, journey: str, experiment: str) -> list[dict]:
    """Variants in the order the split lists them (its journal lines carry ``variants``
    when known), else the first seen first."""
    order: list[str] = []
    for a in actions:
        if a.get("action") == "split" and a.get("journey") == journey:
            if a.get("experiment") == experiment and a.get("variants"):
                order = list(a["variants"])
                break
    if not order:
        return rows
    rank = {name: i for i, name in enumerate(order)}
    return sorted(rows, key=lambda r: rank.get(r["variant"], len(rank)))


def _winner(rows: list[dict]) -> str | None:
    """The best variant significantly better than the first; the first if every other
    is significantly worse; else None."""
    better = [r for r in rows[1:] if r.get("significant") and r["difference"] > 0]
    if better:
        return max(better, key=lambda r: r["rate"])["variant"]
    others = rows[1:]
    if others and all(r.get("significant") and r["difference"] < 0 for r in others):
        return rows[0]["variant"]
    return None


# --------------------------------------------------------------------------- text


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _table(header: list[str], rows: list[list], align: str = "") -> list[str]:
    """Rows under a header; ``align`` has an ``l`` (flush left) or ``r`` per column
    (default: the first left, the rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = []
    for row in [header, *rows]:
        cells = [
            str(c).ljust(w) if a == "l" else str(c).rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _bar(rate: float | None, width: int = 20) -> str:
    if rate is None:
        return ""
    filled = round(rate * width)
    return "#" * filled + "." * (width - filled)


def format_report(report: dict) -> str:
    """The report as text: a table per journey and per experiment."""
    out: list[str] = []
    if not report["journeys"]:
        return "no journey was entered\n"
    out.append("journeys")
    rows = []
    for j in report["journeys"]:
        rows.append(
            [
                j["journey"],
                j["entered"],
                j["holdout"],
                j["converted"],
                _pct(j["rate"]),
                _pct(j["treated"]["rate"]),
                _pct(j["held_out"]["rate"]),
            ]
        )
    out += _table(
        ["journey", "entered", "holdout", "converted", "rate", "treated", "held out"], rows
    )
    for j in report["journeys"]:
        vs = j.get("vs_holdout")
        if vs and vs["difference"] is not None:
            low, high = vs["interval"]
            verdict = "significant" if vs["significant"] else "not significant"
            out.append(
                f"  {j['journey']}: treated vs held out {_pp(vs['difference'])} pp "
                f"(95% CI {_pp(low)} to {_pp(high)}), {verdict}"
            )
    out.append("")
    out.append("messages")
    rows = [
        [j["journey"], m["template"], m["status"], m["reason"], m["count"]]
        for j in report["journeys"]
        for m in j["messages"]
    ]
    if rows:
        out += _table(["journey", "template", "status", "reason", "count"], rows, "llllr")
    else:
        out.append("  (none)")
    for e in report["experiments"]:
        out.append("")
        out.append(f"experiment {e['experiment']} (journey {e['journey']})")
        rows = []
        for i, v in enumerate(e["variants"]):
            if i == 0:
                diff, ci, lift = "baseline", "", ""
            else:
                diff = _pp(v.get("difference"))
                interval = v.get("interval")
                ci = f"{_pp(interval[0])} to {_pp(interval[1])}" if interval else "-"
                lift = _pct(v.get("lift")) if v.get("lift") is not None else "-"
            row = [v["variant"], v["entered"], v["converted"], _pct(v["rate"]), diff, ci, lift]
            rows.append(row + [_bar(v["rate"])])
        header = ["variant", "entered", "converted", "rate", "diff pp", "95% CI pp", "lift"]
        out += _table([*header, ""], rows, "lrrrrrrl")
        if e["winner"]:
            out.append(f"  winner: {e['winner']} (95% interval of the difference excludes 0)")
        else:
            out.append("  no winner: no difference is significant at 95%")
    return "\n".join(out) + "\n"
