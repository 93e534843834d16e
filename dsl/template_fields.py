"""Which profile and trigger fields a template reads (for ``schema:`` checks).

In: a Jinja environment and a template file name. Out: ``field_uses(env, file)``, every
``customer.NAME`` / ``trigger.NAME`` (or ``customer["NAME"]``) the template reads, through
its literal ``{% extends %}``, ``{% include %}`` and ``{% import %}``: ``FieldUse``s with the
file and line. The compiler compares them with the declared schema, so a misspelt
``customer.nmae`` is found before any email is sent (Jinja's ``StrictUndefined`` would
only fail at send time, and ``meta.find_undeclared_variables`` sees top-level names only).
"""

from __future__ import annotations

from dataclasses import dataclass

ROOTS = ("customer", "trigger")


@dataclass(frozen=True)
class FieldUse:
    file: str  # the template file that reads it
    line: int
    root: str  # "customer" | "trigger"
    name: str


def field_uses(env, file: str, _seen: set[str] | None = None) -> list[FieldUse]:
    import jinja2
    from jinja2 import nodes

    seen = _seen if _seen is not None else set()
    if file in seen:
        return []
    seen.add(file)
    try:
        source, filename, _ = env.loader.get_source(env, file)
        tree = env.parse(source, file, filename)
    except (jinja2.TemplateError, OSError, UnicodeDecodeError):
        return []
    out: list[FieldUse] = []
    # Names bound by the template itself ({% set customer = ... %}, loop variables) shadow
    # the context; a template that rebinds a root is not checked for it.
    bound = {
        n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param") and n.name in ROOTS
    }
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name in ROOTS):
            continue
        if target.name in bound:
            continue
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue
        out.append(FieldUse(file, node.lineno, target.name, name))
    for sub in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        target = sub.template
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            out.extend(field_uses(env, target.value, seen))
    return out
