"""Rendering a template into an email, and building the message that goes on the wire.

In: a Jinja environment (``dsl.templates.make_environment``), a template name and its
variables; then the rendered parts plus addresses and ids.
Out: ``RenderedEmail(subject, html, text)`` from ``render_email`` (raising
``TemplateRenderError`` naming the template file and line), and an
``email.message.EmailMessage`` from ``build_message`` whose headers cannot be injected.

CONTRACT.md §3: the whole file rendered is the HTML body, its block ``subject`` rendered
alone is the subject, its optional block ``text`` is the plain-text body (derived from
the HTML when absent).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, TemplateError, TemplateNotFound, TemplateSyntaxError
from jinja2.sandbox import SecurityError

from dsl.addresses import AddressError, address_of  # noqa: F401  (the engine's callers)
from dsl.clock import parse_iso
from dsl.templates import TEMPLATE_SUFFIX, TemplateRenderError, template_file


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class RenderLimitError(Exception):
    """Raised inside a render that passed its time limit (``engine.delivery.render_pool``)."""


# --------------------------------------------------------------------------- render


def render_email(env: Environment, template_name: str, variables: dict[str, Any]) -> RenderedEmail:
    """Render ``template_name`` (``welcome`` or ``welcome.html.j2``) with ``variables``."""
    file_name = (
        template_name if template_name.endswith(TEMPLATE_SUFFIX) else template_file(template_name)
    )
    try:
        template = env.get_template(file_name)
    except TemplateNotFound as exc:
        raise TemplateRenderError(
            file_name, None, f"template not found ({exc.message})", "not_found"
        ) from None
    except TemplateSyntaxError as exc:
        raise _syntax_error(env, exc, file_name) from None
    try:
        ctx = template.new_context(dict(variables))
        html = env.concat(template.root_render_func(ctx))  # type: ignore[attr-defined]
        # After the full render, ctx.blocks holds every block of the extends chain
        # (child first), so a block defined only in a layout, or one calling super(),
        # renders as it does in the page.
        subject = _render_block(template, ctx, variables, "subject")
        text = _render_block(template, ctx, variables, "text")
    except TemplateSyntaxError as exc:  # a layout with bad syntax fails at render time
        raise _syntax_error(env, exc, file_name) from None
    except Exception:
        try:
            # Jinja rewrites the traceback so that frames point at template lines.
            env.handle_exception()
        except TemplateSyntaxError as exc:
            raise _syntax_error(env, exc, file_name) from None
        except Exception as exc:
            raise _runtime_error(env, exc, file_name) from None
    if subject is None:
        raise TemplateRenderError(file_name, None, "no {% block subject %} (the subject line)")
    # Blocks render with HTML autoescape on; the subject and the text part are plain
    # text, so entities go back to characters ("Ann &amp; Bob" -> "Ann & Bob").
    subject = " ".join(unescape(subject).split())
    text = html_to_text(html) if text is None else _tidy_text(unescape(text))
    return RenderedEmail(subject=subject, html=html, text=text)


def _render_block(template: Any, ctx: Any, variables: dict, name: str) -> str | None:
    chain = ctx.blocks.get(name)
    if not chain:
        return None
    block_ctx = template.new_context(dict(variables))
    block_ctx.blocks = {k: list(v) for k, v in ctx.blocks.items()}
    return template.environment.concat(chain[0](block_ctx)).strip()


def _template_label(env: Environment, filename: str | None, fallback: str) -> str:
    """A template's path relative to the templates folder (``layouts/base.html.j2``)."""
    if not filename:
        return fallback
    if not os.path.isabs(filename):
        return filename  # dsl.templates.SnapshotLoader: already relative to the folder
    for root in getattr(env.loader, "searchpath", []) or []:
        try:
            return Path(filename).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            continue
    return os.path.basename(filename)


def _syntax_error(env: Environment, exc: TemplateSyntaxError, fallback: str) -> TemplateRenderError:
    label = _template_label(env, exc.filename, exc.name or fallback)
    return TemplateRenderError(label, exc.lineno, exc.message or str(exc), "syntax")


def _runtime_error(env: Environment, exc: BaseException, fallback: str) -> TemplateRenderError:
    label, line = fallback, None
    tb = exc.__traceback__
    # The deepest frame that is a template file is where the error is written.
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(TEMPLATE_SUFFIX) or filename.endswith(".j2"):
            label, line = _template_label(env, filename, fallback), tb.tb_lineno
        tb = tb.tb_next
    detail = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
    reason = "error"
    if isinstance(exc, SecurityError):
        reason = "security"
    elif isinstance(exc, RenderLimitError):
        reason = "limit"
    elif isinstance(exc, MemoryError):
        reason = "limit"
        detail = "rendering needs more memory than a render may use (LIFECYCLE_RENDER_MEMORY_MB)"
    elif not isinstance(exc, TemplateError):
        detail = f"{type(exc).__name__}: {detail}"
    return TemplateRenderError(label, line, detail, reason)


# --------------------------------------------------------------------------- HTML → text

_BLOCK_TAGS = {
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "table", "tr",
    "blockquote", "section", "article", "header", "footer", "hr", "pre", "dl", "dt", "dd",
}  # fmt: skip
_HIDDEN_TAGS = {"head", "title", "style", "script", "template"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._links: list[tuple[str, int]] = []  # (href, index in parts where the link began)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = " ".join("".join(self.parts[start:]).split())
            if href and not href.startswith("#") and href != label:
                self.parts.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text from HTML: tags dropped, links kept as ``text (url)``, paragraphs kept."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _tidy_text("".join(parser.parts))


def _tidy_text(text: str) -> str:
    paragraphs = re.split(r"\n[ \t]*\n", text)
    out = []
    for para in paragraphs:
        lines = [" ".join(line.split()) for line in para.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            out.append(joined)
    return "\n\n".join(out)


# --------------------------------------------------------------------------- message

_LINE_SEPARATORS = {"\u2028", "\u2029"}


def clean_header(value: str) -> str:
    """``value`` with every control character (C0, C1, DEL, U+2028/2029) made a space.

    EmailMessage refuses CR/LF in headers but lets NUL and TAB through (FINDINGS.md), so
    every header built from data passes through here first.
    """
    cleaned = "".join(
        " " if (unicodedata.category(ch) == "Cc" or ch in _LINE_SEPARATORS) else ch
        for ch in str(value)
    )
    return " ".join(cleaned.split())


_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_body(value: str) -> str:
    """``value`` without NUL and the other C0 controls that RFC 5322 forbids in a body
    (tab and line breaks stay)."""
    return _BODY_CONTROLS.sub("", value)


def message_id_for(idempotency_key: str, sender: str) -> str:
    """A Message-ID that is the same on every retry of one send."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    _, addr = parseaddr(clean_header(sender))
    domain = addr.rpartition("@")[2] if "@" in addr else ""
    if not re.fullmatch(r"[A-Za-z0-9.-]+", domain or "-"):
        domain = "lifecycle.local"
    return f"<{digest}@{domain}>"


def _date_header(sent_at: str) -> str:
    when = parse_iso(sent_at) if sent_at else datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_datetime(when.astimezone(UTC))


# Headers set with set_raw are written as given (never refolded into encoded words); the
# others are header objects and fold as usual.
_POLICY = policy.SMTP.clone(refold_source="none")
_URL_CHARS = "!#$%&'()*+,-./:;=?@[]_~"
_URL_SAFE = re.compile(r"[A-Za-z0-9!#$%&'()*+,\-./:;=?@\[\]_~]+")


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    idempotency_key: str,
    journey: str = "",
    customer_id: str = "",
    unsubscribe_url: str = "",
    sent_at: str = "",
) -> EmailMessage:
    """A multipart/alternative (text + HTML) message; every data-derived header cleaned.

    ``to`` and ``sender`` must each be one address (``address_of``), else ``AddressError``:
    they go into the headers as checked, never repaired."""
    address_of(to)
    address_of(sender)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender.strip()
    msg["To"] = to.strip()
    msg["Subject"] = clean_header(rendered.subject)
    msg["Date"] = _date_header(sent_at)
    msg["Message-ID"] = message_id_for(idempotency_key, sender)
    if journey:
        msg["X-Lifecycle-Journey"] = clean_header(journey)
    if customer_id:
        msg["X-Lifecycle-Customer"] = clean_header(customer_id)
    if unsubscribe_url:
        # RFC 8058 one-click unsubscribe, which large mailbox providers require.
        # Set raw: a link longer than a line would otherwise be refolded into an RFC 2047
        # encoded word, which mailbox providers do not decode (no one-click button).
        link = clean_header(unsubscribe_url)
        if not _URL_SAFE.fullmatch(link):
            link = quote(link, safe=_URL_CHARS)
        msg.set_raw("List-Unsubscribe", f"<{link}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(clean_body(rendered.text) or " ")
    msg.add_alternative(clean_body(rendered.html), subtype="html")
    return msg
