"""Rendering templates into subject / HTML / text, and building the message."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from engine.delivery.message import (
    AddressError,
    RenderedEmail,
    TemplateRenderError,
    build_message,
    clean_header,
    html_to_text,
    message_id_for,
    render_email,
)
from engine.delivery.templates import make_environment

ANN = {"customer": {"name": "Ann", "email": "ann@example.test"}, "unsubscribe_url": ""}


@pytest.fixture
def env(templates_dir):
    return make_environment(templates_dir)


def test_standalone_template_renders_subject_html_and_derived_text(env):
    out = render_email(env, "welcome", ANN)
    assert out.subject == "Hello Ann"
    assert out.html.startswith("<html><head><title>Hello Ann</title></head>")
    assert "<p>Welcome aboard, Ann.</p>" in out.html
    assert out.text == "Welcome aboard, Ann.\n\nStart shopping (https://acme.test/shop) now."


def test_template_name_may_carry_the_suffix(env):
    assert render_email(env, "welcome.html.j2", ANN).subject == "Hello Ann"


def test_unsubscribe_url_reaches_the_template(env):
    out = render_email(env, "welcome", {**ANN, "unsubscribe_url": "https://u.test/c-1"})
    assert '<a href="https://u.test/c-1">Unsubscribe</a>' in out.html
    assert out.text.endswith("\n\nUnsubscribe (https://u.test/c-1)")


def test_child_of_a_layout_defines_subject_and_text_blocks(env):
    out = render_email(env, "nudge", {"customer": {"name": "Ann"}, "discount": 10})
    assert out.subject == "Your first order, Ann?"
    assert "<title>Your first order, Ann?</title>" in out.html
    assert "<p>Take 10% off your first order.</p>" in out.html
    assert '<p class="footer">Acme Inc.</p>' in out.html
    assert out.text == "Take 10% off, Ann."


def test_subject_and_text_are_plain_text_not_escaped_html(env):
    out = render_email(env, "nudge", {"customer": {"name": "Ann & <Bob>"}, "discount": 5})
    assert out.subject == "Your first order, Ann & <Bob>?"
    assert out.text == "Take 5% off, Ann & <Bob>."
    assert "Ann &amp; &lt;Bob&gt;" in out.html


def test_subject_whitespace_is_collapsed(env):
    out = render_email(env, "welcome", {**ANN, "customer": {"name": "  Ann\n\n  Lee "}})
    assert out.subject == "Hello Ann Lee"


def test_runtime_error_names_template_file_and_line(env):
    with pytest.raises(TemplateRenderError) as err:
        render_email(env, "typo", ANN)
    assert str(err.value) == "typo.html.j2:3: 'dict object' has no attribute 'nmae'"


def test_runtime_error_inside_a_child_block_names_the_child(env):
    ctx = {"customer": {"name": "Ann", "plan": {}}, "trigger": {"complaint_id": "k-1"}}
    with pytest.raises(TemplateRenderError) as err:
        render_email(env, "layout_typo", ctx)
    assert str(err.value) == "layout_typo.html.j2:5: 'dict object' has no attribute 'tier'"


def test_undefined_top_level_name_is_an_error(env):
    with pytest.raises(TemplateRenderError) as err:
        render_email(env, "nudge", {"customer": {"name": "Ann"}})
    assert str(err.value) == "nudge.html.j2:3: 'discount' is undefined"


def test_syntax_error_names_template_file_and_line(env):
    with pytest.raises(TemplateRenderError) as err:
        render_email(env, "broken", ANN)
    assert str(err.value).startswith("broken.html.j2:3: Unexpected end of template.")


def test_missing_template_is_a_render_error(env):
    with pytest.raises(TemplateRenderError, match=r"^nope\.html\.j2: template not found"):
        render_email(env, "nope", ANN)


def test_html_to_text_keeps_links_and_paragraphs_and_drops_head():
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<h1>Hi   there</h1><p>Line one<br>line two</p>"
        '<p>See <a href="https://x.test/a">our   shop</a> and <a href="https://x.test/b">'
        "https://x.test/b</a>.</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert html_to_text(html) == (
        "Hi there\n\nLine one\nline two\n\n"
        "See our shop (https://x.test/a) and https://x.test/b.\n\none\n\ntwo"
    )


@pytest.mark.parametrize(
    "bad", ["\r", "\n", "\x00", "\t", "\x1b", "\x85", "\u2028", "\u2029", "\x7f"]
)
def test_clean_header_removes_every_control_character(bad):
    assert clean_header(f"Ann{bad}Bcc: evil@x.test") == "Ann Bcc: evil@x.test"


def test_message_id_is_deterministic_per_key_and_uses_the_sender_domain():
    a = message_id_for("journey-1/step-3", "Acme <hello@acme.test>")
    assert a == message_id_for("journey-1/step-3", "Acme <hello@acme.test>")
    assert a != message_id_for("journey-1/step-4", "Acme <hello@acme.test>")
    assert a.startswith("<") and a.endswith("@acme.test>") and len(a) == len("<@acme.test>") + 32


def test_build_message_headers_and_alternative_parts():
    rendered = RenderedEmail("Hello Ann", "<p>Hi Ann</p>", "Hi Ann")
    msg = build_message(
        rendered,
        sender="Acme <hello@acme.test>",
        to="ann@example.test",
        idempotency_key="k-1",
        journey="welcome-series",
        customer_id="c-42",
        unsubscribe_url="https://u.test/c-42",
        sent_at="2026-01-03T00:00:00Z",
    )
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["From"] == "Acme <hello@acme.test>"
    assert parsed["To"] == "ann@example.test"
    assert parsed["Subject"] == "Hello Ann"
    assert parsed["Date"] == "Sat, 03 Jan 2026 00:00:00 +0000"
    assert parsed["Message-ID"] == message_id_for("k-1", "hello@acme.test")
    assert parsed["X-Lifecycle-Journey"] == "welcome-series"
    assert parsed["X-Lifecycle-Customer"] == "c-42"
    assert parsed["List-Unsubscribe"] == "<https://u.test/c-42>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hi Ann"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hi Ann</p>"


def test_build_message_without_unsubscribe_url_has_no_list_headers():
    msg = build_message(
        RenderedEmail("S", "<p>x</p>", "x"), sender="a@acme.test", to="b@acme.test",
        idempotency_key="k",
    )  # fmt: skip
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("to", ["", "not an address", "Ann <>"])
def test_build_message_refuses_a_recipient_without_an_address(to):
    with pytest.raises(AddressError):
        build_message(
            RenderedEmail("S", "<p>x</p>", "x"), sender="a@acme.test", to=to, idempotency_key="k"
        )
