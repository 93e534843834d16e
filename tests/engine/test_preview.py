"""``lifecycle preview``: shipped templates with the sample customer, errors that point at
the template line, unknown templates and bad ``--customer`` JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import ExitCode, main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "preview_templates"
ANN = json.dumps({"customer": {"name": "Ann", "email": "ann@example.test"}, "discount": 10})


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    # The defaults (templates/, samples/customer.json) are relative to the working folder.
    monkeypatch.chdir(ROOT)


def test_shipped_template_with_the_sample_customer(tmp_path, capsys):
    out_file = tmp_path / "welcome.html"
    code = main(["preview", "welcome", "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK
    assert out.startswith("Subject: Welcome to Acme Shop, Ann\n\nHi Ann,\n\nWelcome to Acme Shop!")
    assert out.endswith(
        "--\nAcme Shop, 12 Roastery Lane, Springfield, ST 04021\n"
        "Questions? Reply to this email or write to hello@acme.test.\n"
        "Unsubscribe: https://acme.test/unsubscribe/c-ann\n"
    )
    assert err == f"html written to {out_file}\n"
    html = out_file.read_text(encoding="utf-8")
    assert "<title>Welcome to Acme Shop, Ann</title>" in html
    assert (
        '<a href="https://acme.test/unsubscribe/c-ann" style="color:#7a6f66;">Unsubscribe</a>'
        in html
    )


def test_default_out_is_var_preview_name_html(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIFECYCLE_DATA", str(tmp_path / "var"))
    code = main(["preview", "complaint-update"])
    out, err = capsys.readouterr()
    assert code == ExitCode.OK
    written = tmp_path / "var" / "preview" / "complaint-update.html"
    assert err == f"html written to {written}\n"
    assert "T-001042" in written.read_text(encoding="utf-8")  # ticket.id from the sample
    assert out.startswith("Subject: ")


def test_inline_json_and_the_default_unsubscribe_link(tmp_path, capsys):
    out_file = tmp_path / "sub" / "nudge.html"  # missing folders are created
    customer = json.dumps({"customer": {"name": "Zoë"}, "discount": 20})
    code = main(
        ["preview", "first-order-nudge.html.j2", "--customer", customer, "--out", str(out_file)]
    )
    out, _ = capsys.readouterr()
    assert code == ExitCode.OK
    assert out.startswith("Subject: 20% off your first bag, Zoë\n\n")
    assert out.rstrip().endswith("Unsubscribe: https://example.test/unsubscribe/preview")
    assert 'href="https://example.test/unsubscribe/preview"' in out_file.read_text()


def test_customer_from_a_file_and_an_empty_unsubscribe_url(tmp_path, capsys):
    sample = tmp_path / "team.json"
    sample.write_text(json.dumps({"customer": {"name": "Ann"}, "unsubscribe_url": ""}))
    code = main(
        ["preview", "welcome", "--customer", str(sample), "--out", str(tmp_path / "w.html")]
    )
    out, _ = capsys.readouterr()
    assert code == ExitCode.OK
    assert "Unsubscribe" not in out
    assert "Unsubscribe" not in (tmp_path / "w.html").read_text()


def _preview_fixture(name: str, tmp_path, customer: str = ANN) -> list[str]:
    return [
        "preview", name, "--templates", str(FIXTURES), "--customer", customer,
        "--out", str(tmp_path / "x.html"),
    ]  # fmt: skip


def test_misspelt_field_points_at_the_line_and_suggests_the_key(tmp_path, capsys):
    code = main(_preview_fixture("typo", tmp_path))
    out, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert out == ""
    assert err == (
        f"{FIXTURES.as_posix()}/typo.html.j2:4:21: error: 'customer.nmae' is undefined\n"
        "<p>Dear {{ customer.nmae }},</p>\n"
        "                    ^\n"
        "hint: the sample context has no 'nmae'; did you mean 'name'?\n"
    )
    assert not (tmp_path / "x.html").exists()


def test_misspelt_variable_suggests_a_top_level_name(tmp_path, capsys):
    code = main(_preview_fixture("discount", tmp_path))
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == (
        f"{FIXTURES.as_posix()}/discount.html.j2:4:12: error: 'discont' is undefined\n"
        "<p>Take {{ discont }}% off.</p>\n"
        "           ^\n"
        "hint: the sample context has no 'discont'; did you mean 'discount'?\n"
    )


def test_missing_variable_lists_what_the_sample_has(tmp_path, capsys):
    code = main(_preview_fixture("discount", tmp_path, '{"customer": {"name": "Ann"}}'))
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == (
        f"{FIXTURES.as_posix()}/discount.html.j2:2:47: error: 'discount' is undefined\n"
        "<html><head><title>{% block subject %}Save {{ discount }}%{% endblock %}</title></head>\n"
        "                                              ^\n"
        "hint: the sample context has no 'discount'; add it to the --customer JSON "
        "(it has: customer, trigger, unsubscribe_url)\n"
    )


def test_syntax_error_points_at_the_line(tmp_path, capsys):
    code = main(_preview_fixture("unclosed", tmp_path))
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == (
        f"{FIXTURES.as_posix()}/unclosed.html.j2:4:1: error: Unexpected end of template. "
        "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. "
        "The innermost block that needs to be closed is 'if'.\n"
        "<p>Dear {{ customer.name }},</p>\n"
        "^\n"
    )


def test_unknown_template_suggests_the_closest(capsys):
    code = main(["preview", "welcom"])
    out, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert out == ""
    assert err == "error: unknown template 'welcom'\nhint: did you mean 'welcome'?\n"


def test_unknown_template_without_a_close_match_lists_them(capsys):
    code = main(["preview", "newsletter", "--templates", str(FIXTURES)])
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == (
        "error: unknown template 'newsletter'\n"
        f"hint: templates in {FIXTURES}: discount, typo, unclosed\n"
    )


def test_layouts_are_not_previewed_alone(capsys):
    assert main(["preview", "layouts/base"]) == ExitCode.PROBLEMS
    assert capsys.readouterr().err.startswith("error: unknown template 'layouts/base'\n")


@pytest.mark.parametrize(
    ("customer", "message"),
    [
        ('{"customer": {"name": "Ann",}}', "invalid JSON at line 1, column 29: "
         "Expecting property name enclosed in double quotes"),
        ('["Ann"]', 'expected a JSON object such as {"customer": {...}, "trigger": {...}}, '
         "got a list"),
        ('{"customer": "Ann"}', "'customer' must be a JSON object, got a string"),
        ("missing.json", "no such file 'missing.json' (give a JSON file, or inline JSON such "
         "as '{\"customer\": {\"name\": \"Ann\"}}')"),
    ],
)  # fmt: skip
def test_bad_customer_json_is_a_usage_error(customer, message, capsys):
    code = main(["preview", "welcome", "--customer", customer])
    out, err = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert out == ""
    assert err == f"error: --customer: {message}\n"


def test_bad_json_in_a_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "customer": {"name": "Ann"}\n  "trigger": {}\n}\n')
    assert main(["preview", "welcome", "--customer", str(bad)]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"error: --customer: invalid JSON in {bad} at line 3, column 3: Expecting ',' delimiter\n"
    )


def test_a_json_file_that_is_not_an_object(tmp_path, capsys):
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    assert main(["preview", "welcome", "--customer", str(bad)]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        "error: --customer: expected a JSON object such as "
        '{"customer": {...}, "trigger": {...}}, got a list\n'
    )


def test_an_error_in_a_file_whose_name_has_a_colon_points_at_its_line(tmp_path, capsys):
    """The error's fields (template, line, message) reach the message as they are: a
    template path with ':' in it once defeated the FILE:LINE: pattern parsed back from
    the text, and the error came out without its line, caret or hint."""
    templates = tmp_path / "t"
    (templates / "partials").mkdir(parents=True)
    (templates / "promo.html.j2").write_text(
        "<html><head><title>{% block subject %}Hi{% endblock %}</title></head>\n"
        '<body>{% include "partials/10:00 sale.html.j2" %}</body></html>\n'
    )
    (templates / "partials" / "10:00 sale.html.j2").write_text(
        "<p>Sale</p>\n<p>{{ customer.nmae }}</p>\n"
    )
    args = ["preview", "promo", "--templates", str(templates), "--customer", ANN]
    code = main([*args, "--out", str(tmp_path / "x.html")])
    _, err = capsys.readouterr()
    assert code == ExitCode.PROBLEMS
    assert err == (
        f"{templates.as_posix()}/partials/10:00 sale.html.j2:2:16: error: "
        "'customer.nmae' is undefined\n"
        "<p>{{ customer.nmae }}</p>\n"
        "               ^\n"
        "hint: the sample context has no 'nmae'; did you mean 'name'?\n"
    )
