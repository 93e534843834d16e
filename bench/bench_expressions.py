"""Benchmark: evaluating journey conditions.

In: nothing (realistic conditions and a customer context are built here by hand).
Out: a table on stdout, µs per evaluation for (a) a hand-written Python lambda over the
same context (the floor), (b) ``dsl.evaluator.compile_expr``, (c) the ``rule-engine``
package on an equivalent rule, with the ratios ours/lambda and rule-engine/ours; then the
cost of compiling one expression (tree -> code object) and, when ``dsl.compiler`` offers
``parse_expression``, of parsing plus compiling from source.

Run: ``.venv/bin/python bench/bench_expressions.py`` (about 20 s). Compare figures only
within one run: the machines are shared and noisy.
"""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rule_engine  # noqa: E402

from dsl import evaluator  # noqa: E402
from dsl.functions import FUNCTIONS  # noqa: E402
from dsl.ir import Expr  # noqa: E402

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CTX = {
    "customer": {
        "email": "ann@example.test",
        "orders_count": 0,
        "marketing_opt_in": True,
        "country": "FR",
        "lifetime_value": 320.5,
        "tags": ["new", "newsletter", "mobile", "eu"],
        "signed_up_at": "2026-01-10T09:30:00Z",
        "vip": False,
    },
    "trigger": {"complaint_id": "cmp-7"},
    "event": {"complaint_id": "cmp-7"},
    "vars": {},
    "now": NOW,
}


def _c(name):
    return ["path", "customer", [name]]


_days_since = FUNCTIONS["days_since"].impl

# (source text, tree, equivalent lambda, equivalent rule-engine rule)
CASES = [
    (
        "customer.orders_count == 0",
        ["cmp", "==", _c("orders_count"), ["lit", 0]],
        lambda ctx: ctx["customer"]["orders_count"] == 0,
        "customer.orders_count == 0",
    ),
    (
        'customer.marketing_opt_in and customer.country in ["DE", "FR"]',
        [
            "and",
            _c("marketing_opt_in"),
            ["cmp", "in", _c("country"), ["list", [["lit", "DE"], ["lit", "FR"]]]],
        ],
        lambda ctx: bool(
            ctx["customer"]["marketing_opt_in"] and ctx["customer"]["country"] in ("DE", "FR")
        ),
        "customer.marketing_opt_in and customer.country in ['DE', 'FR']",
    ),
    (
        "customer.lifetime_value > 500 or len(customer.tags) > 3",
        [
            "or",
            ["cmp", ">", _c("lifetime_value"), ["lit", 500]],
            ["cmp", ">", ["call", "len", [_c("tags")]], ["lit", 3]],
        ],
        lambda ctx: ctx["customer"]["lifetime_value"] > 500 or len(ctx["customer"]["tags"]) > 3,
        "customer.lifetime_value > 500 or customer.tags.length > 3",
    ),
    (
        "days_since(customer.signed_up_at) > 30 and not customer.vip",
        [
            "and",
            ["cmp", ">", ["call", "days_since", [_c("signed_up_at")]], ["lit", 30]],
            ["not", _c("vip")],
        ],
        # the same work as the library function: parse the ISO timestamp, subtract
        lambda ctx: (
            _days_since(ctx["now"], ctx["customer"]["signed_up_at"]) > 30
            and not ctx["customer"]["vip"]
        ),
        "($now - $parse_datetime(customer.signed_up_at)).total_seconds / 86400 > 30"
        " and not customer.vip",
    ),
    (
        "event.complaint_id == trigger.complaint_id",
        ["cmp", "==", ["path", "event", ["complaint_id"]], ["path", "trigger", ["complaint_id"]]],
        lambda ctx: ctx["event"]["complaint_id"] == ctx["trigger"]["complaint_id"],
        "event.complaint_id == trigger.complaint_id",
    ),
]


def per_call_us(fn, number: int) -> float:
    """Best of 5 repeats, µs per call (best, not mean: noise only ever adds time)."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    print(f"Python {sys.version.split()[0]}, rule-engine {rule_engine.__version__}")
    print(f"{'expression':62} {'lambda':>7} {'ours':>7} {'rule-e':>8} {'ours/λ':>7} {'re/ours':>8}")
    ratios_lambda, ratios_re = [], []
    for src, tree, fn, rule_text in CASES:
        ours = evaluator.compile_expr(tree)
        rule = rule_engine.Rule(rule_text)
        want = fn(CTX)
        assert ours(CTX) == want == rule.matches(CTX), (src, ours(CTX), want, rule.matches(CTX))
        t_lambda = per_call_us(lambda fn=fn: fn(CTX), 200_000)
        t_ours = per_call_us(lambda ours=ours: ours(CTX), 200_000)
        t_re = per_call_us(lambda rule=rule: rule.matches(CTX), 5_000)
        ratios_lambda.append(t_ours / t_lambda)
        ratios_re.append(t_re / t_ours)
        print(
            f"{src[:62]:62} {t_lambda:7.3f} {t_ours:7.3f} {t_re:8.2f} "
            f"{t_ours / t_lambda:6.2f}x {t_re / t_ours:7.1f}x"
        )
    print(
        f"worst ours/lambda {max(ratios_lambda):.2f}x (target <= 3x); "
        f"worst rule-engine/ours {min(ratios_re):.1f}x (target >= 10x)"
    )

    # Compiling: a fresh tree each time (a new literal) so the cache never answers.
    tree = CASES[3][1]
    counter = iter(range(10**9))

    def compile_fresh():
        evaluator.compile_expr(["and", tree, ["cmp", "==", _c("x"), ["lit", next(counter)]]])

    t_compile = per_call_us(compile_fresh, 300)
    held = evaluator.compile_expr(tree)
    expr = Expr(CASES[3][0], tree)
    t_held = per_call_us(lambda: held(CTX), 20_000)
    t_expr = per_call_us(lambda: evaluator.evaluate(expr, CTX), 20_000)
    t_tree = per_call_us(lambda: evaluator.evaluate(tree, CTX), 20_000)
    print(f"compile one expression (tree -> code object): {t_compile:.1f} µs")
    print(
        f"case 4 through the caches: held callable {t_held:.2f} µs; evaluate(Expr, ctx) "
        f"(as the workflow calls it, cached by identity) {t_expr:.2f} µs; "
        f"evaluate(bare tree, ctx) (cached by the tree's JSON) {t_tree:.2f} µs"
    )

    deep = ["lit", True]
    for _ in range(5_000):
        deep = ["not", deep]
    deep_fn = evaluator.compile_expr(deep)
    t_deep = per_call_us(lambda: deep_fn(CTX), 20)
    print(f"5,000 nested `not` (stack machine, no codegen): {t_deep:.0f} µs per evaluation")

    try:
        from dsl.compiler import parse_expression  # written concurrently; may not exist yet
    except ImportError:
        print("dsl.compiler.parse_expression not available: source -> tree not measured")
        return
    for src, _tree, fn, _ in CASES:
        expr = parse_expression(src)
        got = evaluator.evaluate(expr, CTX)
        assert got == fn(CTX), (src, got)
    # A new literal each time, so neither the parser's nor the evaluator's cache answers.
    fresh = iter(range(10**9))

    def parse_and_compile():
        text = f"days_since(customer.signed_up_at) > {next(fresh)} and not customer.vip"
        evaluator.compile_expr(parse_expression(text))

    t_parse = per_call_us(parse_and_compile, 200)
    print(f"parse + compile from source (uncached): {t_parse:.1f} µs; every case parsed agrees")


if __name__ == "__main__":
    main()
