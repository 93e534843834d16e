"""Jinja environment for email templates.

In: a templates folder. Out: a sandboxed Jinja ``Environment`` (StrictUndefined, HTML
autoescape, compiled templates cached) and the file name a template name maps to.
``send welcome`` uses ``templates/welcome.html.j2``.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_SUFFIX = ".html.j2"


def template_file(name: str) -> str:
    return f"{name}{TEMPLATE_SUFFIX}"


def make_environment(templates_dir: str | Path) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        cache_size=1000,
        auto_reload=True,
    )


def available_templates(templates_dir: str | Path) -> list[str]:
    """Template names a rule can use (layouts under a subfolder are not counted)."""
    root = Path(templates_dir)
    if not root.is_dir():
        return []
    return sorted(p.name[: -len(TEMPLATE_SUFFIX)] for p in root.glob(f"*{TEMPLATE_SUFFIX}"))
