"""``lifecycle preview TEMPLATE``: render one email with a sample context.

In: a template name, ``--templates DIR``, ``--customer FILE|INLINE-JSON`` (default
samples/customer.json when it exists) and ``--out FILE.html`` (default
``var/preview/TEMPLATE.html``).
Out: ``Subject: ...``, a blank line and the plain-text part on stdout, the HTML written to
the out file (its path on stderr) and ``ExitCode.OK``. A template that fails renders as
``PATH:LINE:COL: error: MESSAGE`` with its source line, a caret and a hint on stderr
(``ExitCode.PROBLEMS``); an unknown template gets a did-you-mean (``ExitCode.PROBLEMS``);
a ``--customer`` that is not a JSON object is ``ExitCode.USAGE``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli import ExitCode, add_content_arguments

if TYPE_CHECKING:
    from dsl.templates import TemplateRenderError

DEFAULT_SAMPLE = "samples/customer.json"
SAMPLE_UNSUBSCRIBE_URL = "https://example.test/unsubscribe/preview"


EXAMPLES = (
    "lifecycle preview welcome",
    'lifecycle preview welcome --customer \'{"customer": {"name": "Bo"}}\'',
    "lifecycle preview welcome --out /tmp/welcome.html",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", help="template name (welcome for templates/welcome.html.j2)")
    add_content_arguments(parser, rules=False)
    parser.add_argument(
        "--customer",
        metavar="FILE|JSON",
        help=f"sample context: a JSON file or inline JSON (default {DEFAULT_SAMPLE})",
    )
    parser.add_argument(
        "--out", metavar="FILE.html", help="where to write the HTML (default var/preview/NAME.html)"
    )


class ContextError(Exception):
    """``--customer`` is not a usable JSON object."""


def run(args: argparse.Namespace) -> ExitCode:
    from dsl.errors import did_you_mean
    from engine.delivery.message import TemplateRenderError
    from engine.delivery.render_pool import shared_pool
    from engine.delivery.templates import TEMPLATE_SUFFIX, TemplateSet, available_templates
    from engine.runtime.config import data_dir

    try:
        context = load_context(args.customer)
    except ContextError as exc:
        print(f"error: --customer: {exc}", file=sys.stderr)
        return ExitCode.USAGE

    name = args.template.removesuffix(TEMPLATE_SUFFIX)
    names = available_templates(args.templates)
    if name not in names:
        print(f"error: unknown template '{name}'", file=sys.stderr)
        hint = did_you_mean(name, names)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        elif names:
            print(f"hint: templates in {args.templates}: " + ", ".join(names), file=sys.stderr)
        else:
            print(f"hint: no *{TEMPLATE_SUFFIX} files in '{args.templates}'", file=sys.stderr)
        return ExitCode.PROBLEMS

    try:
        # In a render process, under the send-time limits: a bomb stops as it would at send.
        templates = TemplateSet.read(args.templates)
        email = shared_pool().render(templates, name, context)
    except TemplateRenderError as exc:
        print(describe_error(exc, args.templates, context), file=sys.stderr)
        return ExitCode.PROBLEMS

    out = Path(args.out) if args.out else data_dir() / "preview" / f"{name}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(email.html, encoding="utf-8")
    print(f"Subject: {email.subject}\n\n{email.text}")
    print(f"html written to {_shown(out)}", file=sys.stderr)
    return ExitCode.OK


def load_context(value: str | None) -> dict[str, Any]:
    """The variables a template sees, from ``--customer`` (a file or inline JSON).

    ``customer`` and ``trigger`` are always defined (the engine always passes them) and
    ``unsubscribe_url`` defaults to a sample link; every other top-level name is passed
    as it is (``event``, ``with`` values, journey variables).
    """
    if value is None:
        sample = Path(DEFAULT_SAMPLE)
        data = _parse(sample.read_text(encoding="utf-8"), sample) if sample.is_file() else {}
    elif value.lstrip().startswith(("{", "[")):
        data = _parse(value, None)
    else:
        path = Path(value)
        if not path.is_file():
            raise ContextError(
                f"no such file '{value}' (give a JSON file, or inline JSON such as "
                '\'{"customer": {"name": "Ann"}}\')'
            )
        data = _parse(path.read_text(encoding="utf-8"), path)
    if not isinstance(data, dict):
        raise ContextError(
            f'expected a JSON object such as {{"customer": {{...}}, "trigger": {{...}}}}, '
            f"got {_json_type(data)}"
        )
    for key in ("customer", "trigger", "event"):
        if key in data and not isinstance(data[key], dict):
            raise ContextError(f"'{key}' must be a JSON object, got {_json_type(data[key])}")
    context = {"customer": {}, "trigger": {}, **data}
    context.setdefault("unsubscribe_url", SAMPLE_UNSUBSCRIBE_URL)
    return context


def _parse(text: str, path: Path | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f" in {path}" if path else ""
        raise ContextError(
            f"invalid JSON{where} at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- errors

_UNDEFINED_NAME = re.compile(r"'(?P<name>[^']+)' is undefined")
_MISSING_ATTR = re.compile(r"has no (?:attribute|element) '(?P<name>[^']+)'")


def describe_error(err: TemplateRenderError, templates_dir: str, context: dict[str, Any]) -> str:
    """A render failure as ``PATH:LINE:COL: error: MESSAGE``, source line, caret, hint,
    from the error's fields (template, line, message)."""
    from dsl.errors import RulesError

    path = (Path(templates_dir) / err.template).as_posix()
    if err.line is None:
        return f"{path}: error: {err.message}"
    source = _source_line(Path(path), err.line)
    col, detail, hint = _undefined_hint(err.message, source or "", context)
    return RulesError(path, err.line, col, detail, hint, source).render()


def _source_line(path: Path, line: int) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[line - 1] if 0 < line <= len(lines) else None


def _undefined_hint(
    message: str, source: str, context: dict[str, Any]
) -> tuple[int, str, str | None]:
    """Column (1 when unknown), message and hint for a render error.

    For an undefined name the column is where it is written on the source line, the
    message names the full path (``'customer.nmae' is undefined`` rather than Jinja's
    ``'dict object' has no attribute 'nmae'``) and the hint offers the closest key the
    sample context has at that place.
    """
    m = _UNDEFINED_NAME.fullmatch(message)
    if m:
        name = m["name"]
        hit = re.search(rf"(?<![\w.]){re.escape(name)}\b", source)
        return (hit.start() + 1 if hit else 1), message, _missing(name, context)
    m = _MISSING_ATTR.search(message)
    if not m:
        return 1, message, None
    name = m["name"]
    # Find "owner.name" on the line where owner resolves in the context but lacks name:
    # that is the lookup that failed (the same name may be fine elsewhere on the line).
    for hit in re.finditer(rf"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.({re.escape(name)})\b", source):
        owner = _resolve(context, hit[1].split("."))
        if isinstance(owner, dict) and name not in owner:
            return hit.start(2) + 1, f"'{hit[1]}.{name}' is undefined", _missing(name, owner)
    return 1, message, _missing(name, _all_keys(context))


def _missing(name: str, keys: Any) -> str:
    import difflib

    keys = sorted(set(keys))
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    if close:
        return f"the sample context has no '{name}'; did you mean '{close[0]}'?"
    missing = f"the sample context has no '{name}'; add it to the --customer JSON"
    if not keys:
        return missing
    return missing + " (it has: " + ", ".join(keys[:12]) + (", ...)" if len(keys) > 12 else ")")


def _resolve(context: dict[str, Any], parts: list[str]) -> Any:
    value: Any = context
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _all_keys(value: Any) -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            keys.add(str(k))
            keys |= _all_keys(v)
    elif isinstance(value, list):
        for v in value:
            keys |= _all_keys(v)
    return keys
