"""Email templates as content: the snapshot of a templates folder, the Jinja sandbox they
render in, and the error a template gives.

In: a templates folder (or a ``TemplateSet``, the snapshot of one). Out: a sandboxed Jinja
``Environment`` (StrictUndefined, HTML autoescape, compiled templates cached, ``*`` and
``**`` results bounded), the file name a template name maps to, ``TemplateSet``: the
folder's text files read once, content-addressed by a hash, which the worker validates
together with the rules and then renders from (a broken edit never reaches a send), and
``TemplateRenderError``: a failure as data (template file, line, message, reason).
``send welcome`` uses ``templates/welcome.html.j2``.

The compiler checks templates with this module; the engine renders with it
(``engine.delivery.message``, ``engine.delivery.render_pool``). It imports Jinja, so the
workflow sandbox never imports it.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jinja2 import (
    BaseLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment, SecurityError

TEMPLATE_SUFFIX = ".html.j2"
# A `*` result (string / list repetition) longer than this, or a `**` result with more
# digits than MAX_POWER_DIGITS, is refused with a SecurityError at the template's line,
# before Python allocates it. Emails are kilobytes; a million is far beyond any real use.
MAX_REPEAT = 1_000_000
MAX_POWER_DIGITS = 1_000


def template_file(name: str) -> str:
    return f"{name}{TEMPLATE_SUFFIX}"


class TemplateRenderError(Exception):
    """A template failed to load, compile or render, as data.

    ``template``: the file the problem is in, relative to the templates folder
    (``layouts/base.html.j2``); ``line``: its line, or None when Jinja does not know it;
    ``message``: what went wrong, without the location; ``reason``: ``not_found``,
    ``syntax``, ``security`` (the sandbox refused an operation), ``limit`` (time or
    memory, ``engine.delivery.render_pool``) or ``error`` (anything else at render time).
    ``str()`` is ``FILE:LINE: MESSAGE`` (``FILE: MESSAGE`` without a line).
    """

    def __init__(
        self, template: str, line: int | None, message: str, reason: str = "error"
    ) -> None:
        super().__init__(template, line, message, reason)  # pickles across processes
        self.template = template
        self.line = line
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        where = f"{self.template}:{self.line}" if self.line is not None else self.template
        return f"{where}: {self.message}"

    def as_dict(self) -> dict:
        """JSON-safe fields (an ``ApplicationError``'s details, a journal line)."""
        return {
            "template": self.template,
            "line": self.line,
            "message": self.message,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TemplateSet:
    """The text files of a templates folder, by path relative to it (``layouts/base.html.j2``).

    ``digest`` is a hash of all of it: the same files give the same digest. ``root`` is
    where they were read from (for messages only; rendering never reads it again)."""

    root: Path
    sources: dict[str, str] = field(default_factory=dict)
    digest: str = ""

    @classmethod
    def read(cls, root: str | Path) -> TemplateSet:
        root = Path(root)
        sources: dict[str, str] = {}
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root).as_posix()
                # Editor swap and backup files (.x.swp, x~) are not templates.
                if any(part.startswith(".") for part in rel.split("/")) or rel.endswith("~"):
                    continue
                if not path.is_file():
                    continue
                try:
                    sources[rel] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue  # an image or a file being replaced: not a template
        return cls(root, sources, _digest(sources))

    def names(self) -> list[str]:
        """Template names a rule can use (layouts under a subfolder are not counted)."""
        return sorted(
            rel[: -len(TEMPLATE_SUFFIX)]
            for rel in self.sources
            if rel.endswith(TEMPLATE_SUFFIX) and "/" not in rel
        )


def _digest(sources: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(sources):
        data = sources[rel].encode("utf-8", "surrogatepass")
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


class SnapshotLoader(BaseLoader):
    """Loads templates from a ``TemplateSet``; a template's file name is its relative
    path, so error tracebacks name ``layouts/base.html.j2``."""

    def __init__(self, templates: TemplateSet) -> None:
        self.templates = templates

    def get_source(self, environment, template: str):
        source = self.templates.sources.get(template)
        if source is None:
            raise TemplateNotFound(template)
        return source, template, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.templates.sources)


class EmailEnvironment(SandboxedEnvironment):
    """The sandbox, with the cheap bombs (``'x' * 10**9``, ``9 ** 10**9``) refused."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple, bytes)) and isinstance(times, int):
                    if len(seq) * times > MAX_REPEAT:
                        raise SecurityError(
                            f"'*' would repeat a value of length {len(seq)} {times} times; "
                            f"the limit is {MAX_REPEAT:,} items"
                        )
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
                digits = right * math.log10(abs(left))
                if digits > MAX_POWER_DIGITS:
                    raise SecurityError(
                        f"'**' would make a number of about {int(digits):,} digits; "
                        f"the limit is {MAX_POWER_DIGITS:,}"
                    )
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)


def make_environment(templates: str | Path | TemplateSet) -> SandboxedEnvironment:
    """The environment over a folder (read live) or over a ``TemplateSet`` (fixed)."""
    if isinstance(templates, TemplateSet):
        loader: BaseLoader = SnapshotLoader(templates)
    else:
        loader = FileSystemLoader(str(templates))
    return EmailEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        cache_size=1000,
        auto_reload=True,
    )


def available_templates(templates: str | Path | TemplateSet) -> list[str]:
    """Template names a rule can use (layouts under a subfolder are not counted)."""
    if isinstance(templates, TemplateSet):
        return templates.names()
    root = Path(templates)
    if not root.is_dir():
        return []
    return sorted(p.name[: -len(TEMPLATE_SUFFIX)] for p in root.glob(f"*{TEMPLATE_SUFFIX}"))


class SampleRenderer(Protocol):
    """What the compiler renders sample emails with (``compile_rules(renderer=...)``):
    each template once per set of names its steps provide, under the send-time limits.
    ``engine.delivery.render_pool.RenderPool`` is one; without a renderer the compiler
    makes no render checks (pure unit tests).

    ``submit`` starts a render of ``name`` with ``variables``, every name in
    ``sample_names`` given a sample value, and returns a handle; ``result`` waits for it
    and raises ``TemplateRenderError`` when the render fails."""

    def submit(
        self,
        templates: TemplateSet,
        name: str,
        variables: dict,
        sample_names: Sequence[str] | None = None,
    ) -> Any: ...

    def result(self, handle: Any) -> Any: ...
